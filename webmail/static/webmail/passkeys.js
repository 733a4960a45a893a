// Passkeys (WebAuthn) for the security page and the second sign-in step. The server sends options in the
// JSON form of WebAuthn Level 3 and takes the credential's toJSON() back (webmail/views/security.py).
"use strict";

(() => {
  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({ error: "The server did not answer; try again." }));
    if (!response.ok) throw new Error(data.error || "Refused.");
    return data;
  }

  function report(container, error) {
    const box = container.querySelector(".error");
    box.textContent = error.name === "NotAllowedError" ? "Cancelled, or the passkey was not available." : error.message;
    box.hidden = false;
  }

  function supported(container) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) return true;
    report(container, new Error("This browser cannot use passkeys."));
    return false;
  }

  const add = document.querySelector("#passkey-add");
  if (add) {
    add.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!supported(add)) return;
      try {
        const options = await post(add.dataset.options);
        const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
        const credential = await navigator.credentials.create({ publicKey });
        const done = await post(add.action, { name: add.elements.name.value, credential: credential.toJSON() });
        window.location.assign(done.redirect);
      } catch (error) {
        report(add, error);
      }
    });
  }

  const use = document.querySelector("#passkey-use");
  if (use) {
    use.addEventListener("click", async () => {
      const container = use.closest("section");
      if (!supported(container)) return;
      try {
        const options = await post(use.dataset.options);
        const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
        const credential = await navigator.credentials.get({ publicKey });
        const done = await post(use.dataset.answer, { credential: credential.toJSON() });
        window.location.assign(done.redirect);
      } catch (error) {
        report(container, error);
      }
    });
  }
})();
