// The example shop's account page: flask-evershop-customer's API from a browser.
//
// The login's token travels only in the HttpOnly cookie: this script never reads or keeps
// it. Every request is same-origin, so the browser sends the cookie and an Origin header
// that the library checks on every cookie-authenticated write. Whatever comes from the API
// is shown with textContent, never parsed as HTML.
"use strict";

const API = "/api/customers";

/** The page's state: who is logged in, and what the last read of them said. */
const state = {
  customer: null, // the customer object of GET /me, or null while logged out
  etag: null, // its ETag, sent back as If-Match so that an edit never undoes another
  sid: null, // this browser's session id (from the login, or the sessions list)
  resetToken: null, // the token of a reset link, taken out of the address bar
};

function $(id) {
  return document.getElementById(id);
}

/** An error answer of the API: EverShop's {"error": {"status", "message"}}. */
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * One request to the API. Resolves to {data, etag}; rejects with an ApiError whose
 * message is the server's own.
 */
async function api(method, path, body, extraHeaders) {
  const headers = { Accept: "application/json", ...(extraHeaders || {}) };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "The shop cannot be reached");
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (error) {
    payload = null;
  }
  if (!response.ok) {
    const error = payload && payload.error;
    const message =
      error && typeof error.message === "string" ? error.message : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return { data: payload ? payload.data : null, etag: response.headers.get("ETag") };
}

// --- The status line -------------------------------------------------------------------

let sequence = 0;

/** Show an outcome; data-seq counts outcomes, so a reader can wait for the next one. */
function report(kind, message, httpStatus) {
  const status = $("status");
  status.textContent = message;
  status.dataset.state = kind;
  status.dataset.httpStatus = httpStatus === undefined ? "" : String(httpStatus);
  sequence += 1;
  status.dataset.seq = String(sequence);
}

/**
 * An event handler running `work` (which returns the message of its success), with its
 * outcome on the status line. A 401 means this browser's session is over.
 */
function action(work) {
  return async (event) => {
    if (event) {
      event.preventDefault();
    }
    const status = $("status");
    status.dataset.state = "pending";
    status.textContent = "Working…";
    try {
      report("ok", await work(event), 200);
    } catch (error) {
      if (error instanceof ApiError) {
        report("error", `${error.message} (${error.status})`, error.status);
        if (error.status === 401 && state.customer !== null) {
          showSignedOut();
        }
      } else {
        report("error", String(error));
        throw error;
      }
    }
  };
}

// --- Which part of the page shows -----------------------------------------------------

function showSignedOut() {
  state.customer = null;
  state.etag = null;
  state.sid = null;
  $("account").hidden = true;
  $("signed-out").hidden = false;
  // Nothing of the customer stays on the page (a shared computer).
  $("profile-full-name").textContent = "";
  $("profile-email").textContent = "";
  $("profile-form").reset();
  clearAddressForm();
  $("address-list").replaceChildren();
  $("session-list").replaceChildren();
}

async function showAccount() {
  await loadProfile();
  await Promise.all([loadAddresses(), loadSessions()]);
  $("signed-out").hidden = true;
  $("account").hidden = false;
}

// --- Register, log in, reset ----------------------------------------------------------

async function register() {
  const body = {
    full_name: $("register-full-name").value,
    email: $("register-email").value,
    password: $("register-password").value,
  };
  const { data } = await api("POST", API, body);
  $("register-form").reset();
  $("login-email").value = data.email;
  return `Account created for ${data.email}. You can log in now.`;
}

async function logIn() {
  const body = { email: $("login-email").value, password: $("login-password").value };
  // The answer's token is not kept: the cookie set with it is all this page needs.
  const { data } = await api("POST", `${API}/sessions`, body);
  $("login-form").reset();
  state.sid = data.sid;
  await showAccount();
  return `Logged in as ${state.customer.email}.`;
}

async function requestReset() {
  await api("POST", `${API}/reset-password`, { email: $("forgot-email").value });
  $("forgot-form").reset();
  return "If this email has an account, a reset link is on its way (the example app writes it on its log).";
}

async function completeReset() {
  const body = { token: state.resetToken, password: $("reset-password").value };
  await api("POST", `${API}/password`, body);
  state.resetToken = null;
  $("reset-form").reset();
  $("reset-section").hidden = true;
  if (state.customer !== null) {
    showSignedOut(); // the reset ended this browser's session too
  }
  return "Your password is changed, and every session of yours has ended. Log in with the new password.";
}

// --- Profile ----------------------------------------------------------------------------

function renderProfile() {
  const customer = state.customer;
  $("profile-full-name").textContent = customer.full_name;
  $("profile-email").textContent = customer.email;
  $("profile-edit-full-name").value = customer.full_name;
  $("profile-edit-email").value = customer.email;
  $("profile-current-password").value = "";
}

async function loadProfile() {
  const { data, etag } = await api("GET", `${API}/me`);
  state.customer = data;
  state.etag = etag;
  renderProfile();
}

async function saveProfile() {
  const body = {
    full_name: $("profile-edit-full-name").value,
    email: $("profile-edit-email").value,
  };
  const currentPassword = $("profile-current-password").value;
  if (currentPassword) {
    body.current_password = currentPassword;
  }
  const headers = state.etag ? { "If-Match": state.etag } : {};
  let answer;
  try {
    answer = await api("PATCH", `${API}/me`, body, headers);
  } catch (error) {
    if (error instanceof ApiError && error.status === 412) {
      await loadProfile(); // changed elsewhere: show what is stored now
    }
    throw error;
  }
  state.customer = answer.data;
  state.etag = answer.etag;
  renderProfile();
  return "Your profile is saved.";
}

// --- Addresses --------------------------------------------------------------------------

const ADDRESS_FIELDS = [
  ["full_name", "address-full-name"],
  ["address_1", "address-address-1"],
  ["address_2", "address-address-2"],
  ["city", "address-city"],
  ["postcode", "address-postcode"],
  ["telephone", "address-telephone"],
  ["country", "address-country"],
  ["province", "address-province"],
];

let addresses = [];

function describeAddress(address) {
  const parts = [
    address.full_name,
    address.address_1,
    address.address_2,
    [address.postcode, address.city].filter(Boolean).join(" "),
    address.province,
    address.country,
    address.telephone,
  ];
  return parts.filter(Boolean).join(", ");
}

/** A button of a list item; `label` names what it acts on, for screen readers. */
function button(text, className, label, handler) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = text;
  element.setAttribute("aria-label", `${text}: ${label}`);
  element.addEventListener("click", handler);
  return element;
}

function mark(className, text) {
  const element = document.createElement("strong");
  element.className = className;
  element.textContent = text;
  return element;
}

function renderAddresses() {
  const items = addresses.map((address) => {
    const item = document.createElement("li");
    item.dataset.uuid = address.uuid;
    const description = describeAddress(address);
    const text = document.createElement("span");
    text.className = "address-text";
    text.textContent = description;
    item.append(text);
    if (address.is_default) {
      item.append(mark("address-default", " (default)"));
    }
    item.append(button("Edit", "address-edit", description, () => editAddress(address)));
    if (!address.is_default) {
      const work = action(() => makeDefault(address));
      item.append(button("Make default", "address-make-default", description, work));
    }
    const remove = action(() => deleteAddress(address));
    item.append(button("Delete", "address-delete", description, remove));
    return item;
  });
  $("address-list").replaceChildren(...items);
}

async function loadAddresses() {
  const { data } = await api("GET", `${API}/me/addresses`);
  addresses = data.items;
  renderAddresses();
}

function clearAddressForm() {
  $("address-form").reset();
  $("address-uuid").value = "";
  $("address-form-legend").textContent = "Add an address";
}

function editAddress(address) {
  for (const [name, id] of ADDRESS_FIELDS) {
    $(id).value = address[name] || "";
  }
  $("address-is-default").checked = address.is_default;
  $("address-uuid").value = address.uuid;
  $("address-form-legend").textContent = "Edit the address";
  $("address-full-name").focus();
}

async function saveAddress() {
  const body = { is_default: $("address-is-default").checked };
  for (const [name, id] of ADDRESS_FIELDS) {
    const value = $(id).value.trim();
    body[name] = value === "" ? null : value; // an empty optional field is cleared
  }
  const uuid = $("address-uuid").value;
  if (uuid) {
    await api("PATCH", `${API}/me/addresses/${encodeURIComponent(uuid)}`, body);
  } else {
    await api("POST", `${API}/me/addresses`, body);
  }
  clearAddressForm();
  await loadAddresses();
  return uuid ? "The address is saved." : "The address is added.";
}

async function makeDefault(address) {
  await api("PATCH", `${API}/me/addresses/${encodeURIComponent(address.uuid)}`, {
    is_default: true,
  });
  await loadAddresses();
  return "This is now your default address.";
}

async function deleteAddress(address) {
  await api("DELETE", `${API}/me/addresses/${encodeURIComponent(address.uuid)}`);
  if ($("address-uuid").value === address.uuid) {
    clearAddressForm();
  }
  await loadAddresses();
  return "The address is deleted.";
}

// --- Sessions and logout --------------------------------------------------------------

function renderSessions(sessions) {
  const items = sessions.map((session) => {
    const item = document.createElement("li");
    item.dataset.sid = session.sid;
    const text = document.createElement("span");
    text.className = "session-text";
    const agent = session.user_agent || "an unknown browser";
    const description = `since ${session.created_at} UTC, on ${agent}`;
    text.textContent = `Since ${session.created_at} UTC, until ${session.expires_at} UTC, on ${agent}`;
    item.append(text);
    if (session.current) {
      item.append(mark("session-current", " (this browser)"));
    } else {
      const work = action(() => endSession(session.sid));
      item.append(button("End", "session-end", `the session ${description}`, work));
    }
    return item;
  });
  $("session-list").replaceChildren(...items);
}

async function loadSessions() {
  const { data } = await api("GET", `${API}/me/sessions`);
  const current = data.items.find((session) => session.current);
  if (current) {
    state.sid = current.sid;
  }
  renderSessions(data.items);
}

async function endSession(sid) {
  await api("DELETE", `${API}/sessions/${encodeURIComponent(sid)}`);
  await loadSessions();
  return "That session is ended.";
}

async function endOtherSessions() {
  await api("DELETE", `${API}/me/sessions`);
  await loadSessions();
  return "Every other session is ended.";
}

async function logOut() {
  if (state.sid === null) {
    await loadSessions();
  }
  if (state.sid === null) {
    // No session of this browser is listed: EverShop's storefront route ends the one
    // the cookie names, whatever it is.
    await api("POST", "/customer/logout");
  } else {
    // Ending one's own session clears the cookie in the same answer.
    await api("DELETE", `${API}/sessions/${encodeURIComponent(state.sid)}`);
  }
  showSignedOut();
  return "You are logged out.";
}

// --- Start -------------------------------------------------------------------------------

function takeResetToken() {
  const token = new URLSearchParams(window.location.search).get("token");
  if (token === null) {
    return;
  }
  state.resetToken = token;
  // The token leaves the address bar (and the history) once it is read.
  window.history.replaceState(null, "", "/");
  $("reset-section").hidden = false;
  $("reset-password").focus();
}

async function start() {
  $("register-form").addEventListener("submit", action(register));
  $("login-form").addEventListener("submit", action(logIn));
  $("forgot-form").addEventListener("submit", action(requestReset));
  $("reset-form").addEventListener("submit", action(completeReset));
  $("profile-form").addEventListener("submit", action(saveProfile));
  $("address-form").addEventListener("submit", action(saveAddress));
  $("address-cancel").addEventListener("click", clearAddressForm);
  $("sessions-end-others").addEventListener("click", action(endOtherSessions));
  $("logout-button").addEventListener("click", action(logOut));
  takeResetToken();
  try {
    await showAccount();
    report("ok", `Logged in as ${state.customer.email}.`, 200);
  } catch (error) {
    showSignedOut();
    if (error instanceof ApiError && error.status === 401) {
      report("idle", "You are not logged in.", 401);
    } else {
      report("error", error.message || String(error), error.status);
    }
  }
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", start);
