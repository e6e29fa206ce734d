"""Blinker signals, sent with the app as sender.

They are sent inside the request's transaction, once the change is written and just
before it is committed: a receiver sees the new state, and a receiver that raises rolls
the whole change back (the client then gets a 500 envelope and nothing is stored).
Payloads carry the customer's public fields (``customer``, a dict) and never the password
or its hash.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: ``customer`` (dict): a customer was created.
customer_created = _signals.signal("evershop-customer-created")
#: ``customer`` (dict), ``changed`` (sorted field names): a customer was updated.
customer_updated = _signals.signal("evershop-customer-updated")
#: ``customer`` (dict, as it was): a customer was deleted.
customer_deleted = _signals.signal("evershop-customer-deleted")
#: ``customer`` (dict), ``sid`` (str): a customer logged in.
customer_logged_in = _signals.signal("evershop-customer-logged-in")
#: ``customer`` (dict), ``sids`` (list of str): sessions of a customer were ended by a
#: logout (or by a replayed refresh token).
customer_logged_out = _signals.signal("evershop-customer-logged-out")
#: ``customer`` (dict), ``token`` (str): a password reset was requested for an active
#: customer. The host mails the link; ``token`` appears nowhere else. Sent after the token
#: is stored (a receiver that raises is logged and changes nothing).
password_reset_requested = _signals.signal("evershop-customer-password-reset-requested")
#: ``customer`` (dict): a password was reset with a token (every session has ended).
password_reset = _signals.signal("evershop-customer-password-reset")
#: ``customer`` (dict), ``address`` (dict): an address was added.
address_created = _signals.signal("evershop-customer-address-created")
#: ``customer`` (dict), ``address`` (dict), ``changed`` (sorted field names): an address
#: was changed (``is_default`` among the fields when it became, or stopped being, the
#: default; an address that lost its default to another one is not reported).
address_updated = _signals.signal("evershop-customer-address-updated")
#: ``customer`` (dict), ``address`` (dict, as it was): an address was deleted.
address_deleted = _signals.signal("evershop-customer-address-deleted")
