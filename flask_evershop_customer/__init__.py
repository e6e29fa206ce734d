"""EverShop's Customer REST API as a Flask extension."""

from .auth import admin_required as admin_required
from .auth import current_customer as current_customer
from .auth import customer_required as customer_required
from .auth import get_current_customer as get_current_customer
from .errors import APIError as APIError
from .errors import ConfigurationError as ConfigurationError
from .errors import EverShopCustomerError as EverShopCustomerError
from .errors import TooManyRequests as TooManyRequests
from .extension import EverShopCustomer as EverShopCustomer
from .migrations import MIGRATIONS_DIRECTORY as MIGRATIONS_DIRECTORY
from .migrations import add_version_location as add_version_location

__version__ = "0.1.0"
