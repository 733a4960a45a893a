// Mailsite webmail: progressive enhancement over server-rendered pages. Every feature also works without it
// (links and forms), except live updates, keyboard shortcuts, autosave and address suggestions.
"use strict";

(function () {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const fetchHeaders = { "X-Requested-With": "fetch" };
  // Selection boxes of the list: single messages (uid) or whole conversations (thread).
  const PICK = "input[name=uid], input[name=thread]";

  async function fetchText(url) {
    const response = await fetch(url, { headers: fetchHeaders, credentials: "same-origin" });
    if (response.status === 401) {
      window.location.reload();
      throw new Error("signed out");
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.text();
  }

  // --- Message list: open in the reading pane, selection, live refresh ---------------------------------------

  function rows() {
    return $$("#list .row");
  }

  function cursorRow() {
    return $("#list .row.cursor") || $("#list .row.open-now");
  }

  function setCursor(row) {
    rows().forEach((r) => r.classList.remove("cursor"));
    if (row) {
      row.classList.add("cursor");
      row.scrollIntoView({ block: "nearest" });
    }
  }

  async function openRow(row, push = true) {
    const href = row.dataset.href;
    const reader = $("#reader");
    // Without the reading pane (a setting), a message opens in the list's place, as a page of its own.
    if (!reader || !href.includes("/m/") || document.body.classList.contains("no-pane")) {
      window.location.href = href;
      return;
    }
    reader.innerHTML = await fetchText(`${href}?fragment=1`);
    rows().forEach((r) => r.classList.remove("open-now"));
    row.classList.add("open-now");
    row.classList.remove("unread");
    setCursor(row);
    document.body.classList.add("reading");
    if (push) history.pushState({ message: href }, "", href);
    refreshFolders();
  }

  function bindList() {
    const list = $("#list");
    if (!list) return;
    list.addEventListener("click", (event) => {
      const target = event.target;
      const star = target.closest("[data-star]");
      if (star) {
        event.preventDefault();
        toggleStar(star);
        return;
      }
      if (target.closest("input, button, select, label")) return;
      const row = target.closest(".row");
      if (!row) return;
      event.preventDefault();
      openRow(row).catch(() => (window.location.href = row.dataset.href));
    });
    list.addEventListener("change", (event) => {
      if (event.target.matches(".select-all")) {
        $$(PICK, list).forEach((box) => (box.checked = event.target.checked));
      }
    });
  }

  // A click on a row's star flags or unflags that message (or whole conversation) at once.
  async function toggleStar(star) {
    const form = $("#list-form");
    const box = $(PICK, star.closest(".row"));
    if (!form || !box) return;
    const on = star.classList.contains("on");
    const data = new FormData();
    data.set("csrfmiddlewaretoken", $("input[name=csrfmiddlewaretoken]", form).value);
    data.set(box.name, box.value);
    data.set("action", on ? "unstar" : "star");
    const response = await fetch(form.getAttribute("action"), {
      method: "POST",
      body: data,
      headers: fetchHeaders,
      credentials: "same-origin",
    });
    if (!response.ok) return;
    star.classList.toggle("on", !on);
    star.setAttribute("aria-pressed", String(!on));
  }

  // The delivery block of a sent message is fetched again when the relay records an attempt: the live-update
  // stream then names the sender's Sent folder (0: anything may have changed).
  async function refreshDelivery(changed) {
    for (const block of $$("[data-delivery][data-open]")) {
      if (!changed.has(block.dataset.folder) && !changed.has("0")) continue;
      const html = await fetchText(block.dataset.delivery).catch(() => null);
      if (html === null || !block.isConnected) continue;
      const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-delivery]");
      if (fresh) block.replaceWith(document.importNode(fresh, true));
    }
  }

  let refreshing = null;
  async function refreshList() {
    const list = $("#list");
    if (!list || !list.dataset.src) return;
    const html = await fetchText(list.dataset.src);
    // Read the selection only now: a box ticked while the fetch was under way must stay ticked.
    const checked = new Set($$(PICK, list).filter((box) => box.checked).map((box) => box.value));
    const openId = $("#list .row.open-now")?.dataset.id;
    const cursorId = $("#list .row.cursor")?.dataset.id;
    list.innerHTML = html;
    $$(PICK, list).forEach((box) => (box.checked = checked.has(box.value)));
    if (openId) $(`#list .row[data-id="${openId}"]`)?.classList.add("open-now");
    if (cursorId) $(`#list .row[data-id="${cursorId}"]`)?.classList.add("cursor");
  }

  async function refreshFolders() {
    const folders = $("#folders");
    if (!folders || !folders.dataset.src) return;
    folders.innerHTML = await fetchText(folders.dataset.src);
    // The tab's title starts with the Inbox's unread count.
    const unread = $("#folders .folder[data-role=inbox] .count")?.textContent.trim();
    const title = document.title.replace(/^\(\d+\) /, "");
    document.title = unread ? `(${unread}) ${title}` : title;
  }

  // A change that comes while a refresh is under way gets one more refresh after it: the one under way may have
  // read the page before that change was committed (a star clicked off while the refresh of its click on ran).
  let again = false;
  function refreshAll() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = Promise.allSettled([refreshList(), refreshFolders()]).finally(() => {
      refreshing = null;
      if (again) {
        again = false;
        refreshAll();
      }
    });
  }

  function liveUpdates() {
    const url = document.body.dataset.events;
    if (!url || !window.EventSource || !$("#list")) return;
    const source = new EventSource(url);
    source.addEventListener("change", (event) => {
      refreshAll();
      refreshDelivery(new Set(String(event.data).split(",")));
    });
    window.addEventListener("pagehide", () => source.close());
  }

  window.addEventListener("popstate", () => window.location.reload());

  // --- Keyboard shortcuts -------------------------------------------------------------------------------------

  function move(step) {
    const all = rows();
    if (!all.length) return;
    const current = all.indexOf(cursorRow());
    const next = current < 0 ? 0 : Math.min(all.length - 1, Math.max(0, current + step));
    setCursor(all[next]);
  }

  function clickIn(selector) {
    const element = $(`#reader ${selector}`);
    if (element) element.click();
    return Boolean(element);
  }

  function deleteCurrent() {
    if (clickIn("[data-key='#']")) return;
    const row = cursorRow();
    const box = row && $(PICK, row);
    const button = $("#list button[value=trash], #list button[value=delete]");
    if (box && button) {
      $$(PICK, $("#list")).forEach((other) => (other.checked = false));
      box.checked = true;
      button.click();
    }
  }

  function shortcuts(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    const dialog = $("#shortcuts");
    const actions = {
      j: () => move(1),
      k: () => move(-1),
      o: () => cursorRow() && openRow(cursorRow()),
      Enter: () => cursorRow() && openRow(cursorRow()),
      r: () => clickIn("[data-key=r]"),
      a: () => clickIn("[data-key=a]"),
      f: () => clickIn("[data-key=f]"),
      c: () => (window.location.href = $("#compose-link").href),
      "#": deleteCurrent,
      "/": () => $("#search")?.focus(),
      "?": () => dialog && (dialog.open ? dialog.close() : dialog.showModal()),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  }

  // --- Compose: address suggestions and draft autosave --------------------------------------------------------

  function suggestions(form) {
    const url = form.dataset.contacts;
    $$("input[data-contacts]", form).forEach((input) => {
      const list = document.getElementById(input.getAttribute("list"));
      let timer = null;
      input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(async () => {
          const parts = input.value.split(",");
          const last = parts.pop().trim();
          if (last.length < 2) return;
          const prefix = parts.length ? `${parts.join(",").trim()}, ` : "";
          const data = JSON.parse(await fetchText(`${url}?q=${encodeURIComponent(last)}`));
          list.replaceChildren(
            ...data.results.map((address) => {
              const option = document.createElement("option");
              option.value = `${prefix}${address}`;
              return option;
            }),
          );
        }, 150);
      });
    });
  }

  // --- Compose: the text survives everything --------------------------------------------------------------
  // The form is autosaved as a draft every few seconds while it changes, and kept in this browser's local
  // storage until the server has it: if the server or its database is down, Send and Save answer 503 and the
  // page stays as it is; the kept text is saved as a draft as soon as the server answers again, by this page
  // or, if the user closed it, by the next webmail page opened.

  const KEPT = "mailsite.compose.";
  const TEXT_FIELDS = [
    "to", "cc", "bcc", "subject", "body", "body_html", "in_reply_to", "references", "replying", "draft",
  ];
  const ORPHANED_AFTER_MS = 60000; // a kept text whose page stopped touching it this long ago was left behind

  function keptEntries() {
    return Object.keys(localStorage)
      .filter((key) => key.startsWith(KEPT))
      .map((key) => {
        try {
          return [key, JSON.parse(localStorage.getItem(key))];
        } catch (error) {
          return [key, null];
        }
      });
  }

  async function postForm(url, data) {
    let response;
    try {
      response = await fetch(url, { method: "POST", body: data, headers: fetchHeaders, credentials: "same-origin" });
    } catch (error) {
      return { status: 0, body: { error: "The server cannot be reached (offline?)." } };
    }
    let body = {};
    try {
      body = await response.json();
    } catch (error) {
      body = { error: `The server answered ${response.status}.` };
    }
    return { status: response.status, body };
  }

  function csrfToken() {
    return $("input[name=csrfmiddlewaretoken]")?.value || "";
  }

  // Texts kept by compose pages that were closed before the server could store them become drafts.
  async function saveOrphans() {
    const link = $("#compose-link");
    if (!link) return;
    for (const [key, entry] of keptEntries()) {
      if (entry && entry.open && Date.now() - entry.touched < ORPHANED_AFTER_MS) continue;
      if (!entry) {
        localStorage.removeItem(key);
        continue;
      }
      const data = new FormData();
      Object.entries(entry.fields).forEach(([name, value]) => data.set(name, value));
      (entry.keep || []).forEach((value) => data.append("keep", value));
      data.set("action", "autosave");
      data.set("csrfmiddlewaretoken", csrfToken());
      const result = await postForm(link.getAttribute("href"), data);
      if (result.status === 200 || result.status === 400) {
        // Stored, or refused for good (a field the server will never accept): either way nothing to retry.
        localStorage.removeItem(key);
      }
    }
  }

  // The rich editor (Squire, from static/webmail/vendor): it edits the HTML of the message and keeps the plain
  // text field in step, so autosave, the kept copy and the size check work as without it. The server cleans
  // the HTML again and generates the plain-text alternative from it.
  // The editor's content as lines of plain text: blocks are lines, list items get "- " or "1. ", quotes "> "
  // (RFC 3676 style); unlike innerText, spaces such as the "-- " before a signature are kept.
  function plainText(root) {
    const lines = [];
    const inline = (node) => {
      let out = "";
      node.childNodes.forEach((child) => {
        if (child.nodeType === Node.TEXT_NODE) out += child.nodeValue.replace(/\u00a0/g, " ");
        else if (child.nodeName === "BR") out += "\n";
        else if (child.nodeType === Node.ELEMENT_NODE) out += inline(child);
      });
      return out;
    };
    const block = (node, prefix) => {
      node.childNodes.forEach((child) => {
        const name = child.nodeName;
        if (name === "BLOCKQUOTE") {
          block(child, `${prefix}> `);
        } else if (name === "UL" || name === "OL") {
          Array.from(child.children).forEach((item, i) => {
            const marker = name === "OL" ? `${i + 1}. ` : "- ";
            inline(item).replace(/\n$/, "").split("\n").forEach((line, j) => lines.push(`${prefix}${j ? "   " : marker}${line}`));
          });
        } else if (child.nodeType === Node.ELEMENT_NODE && /^(DIV|P|H[1-6]|PRE|TABLE)$/.test(name)) {
          inline(child).replace(/\n$/, "").split("\n").forEach((line) => lines.push(`${prefix}${line}`));
        } else if (child.nodeType === Node.TEXT_NODE || child.nodeType === Node.ELEMENT_NODE) {
          const text = child.nodeType === Node.TEXT_NODE ? child.nodeValue : inline(child);
          if (text.trim()) lines.push(`${prefix}${text}`);
        }
      });
    };
    block(root, "");
    return lines;
  }

  function richEditor(form) {
    const text = form.elements.namedItem("body");
    const html = form.elements.namedItem("body_html");
    const box = $("#editor", form);
    if (!window.Squire || !html || !box) return;
    const editor = new window.Squire(box, { blockTag: "DIV" });
    const textHtml = (value) =>
      value
        .split("\n")
        .map((line) => {
          const div = document.createElement("div");
          div.textContent = line.replace(/ $/, "\u00a0"); // the editor drops a plain trailing space ("-- ")
          return line ? div.outerHTML : "<div><br></div>";
        })
        .join("");
    editor.setHTML(html.value || textHtml(text.value));
    const sync = () => {
      html.value = editor.getHTML();
      text.value = plainText(box).join("\n");
    };
    const changed = () => {
      sync();
      form.dispatchEvent(new Event("input", { bubbles: true }));
    };
    html.disabled = false;
    text.hidden = true;
    box.hidden = false;
    sync();
    box.addEventListener("input", sync);
    editor.addEventListener("input", changed);
    const toolbar = $(".editor-toolbar", form);
    toolbar.hidden = false;
    toolbar.addEventListener("mousedown", (event) => event.preventDefault()); // keep the selection
    toolbar.addEventListener("click", (event) => {
      const command = event.target.closest("[data-format]")?.dataset.format;
      if (!command) return;
      if (command === "link") {
        const url = window.prompt("Link to (https://...)");
        if (url && /^(https?:|mailto:)/i.test(url.trim())) editor.makeLink(url.trim());
      } else {
        editor[command]();
      }
      editor.focus();
      changed();
    });
    // Images pasted or dropped go into the message, as data: URLs the server turns into cid: parts.
    const insertImages = (files) =>
      Array.from(files || [])
        .filter((file) => /^image\/(png|jpeg|gif|webp)$/.test(file.type))
        .forEach((file) => {
          const reader = new FileReader();
          reader.onload = () => {
            editor.insertImage(reader.result, { alt: file.name });
            changed();
          };
          reader.readAsDataURL(file);
        });
    const takeFiles = (transfer, event) => {
      if (!transfer?.files?.length) return;
      event.preventDefault();
      event.stopPropagation();
      insertImages(transfer.files);
    };
    const holder = box.parentElement;
    holder.addEventListener("paste", (event) => takeFiles(event.clipboardData, event), true);
    holder.addEventListener("drop", (event) => takeFiles(event.dataTransfer, event), true);
  }

  function composeForm(form) {
    const url = form.getAttribute("action"); // not form.action: the Send/Save buttons are named "action"
    const status = $(".draft-status", form);
    const alertBox = $(".compose-alert", form);
    const sizeError = $(".size-error", form);
    const files = $("#id_attachments", form);
    const maxSize = Number(form.dataset.maxSize || 0);
    const key = KEPT + Math.random().toString(36).slice(2);

    const textState = () =>
      JSON.stringify([
        TEXT_FIELDS.filter((name) => name !== "draft").map((name) => form.elements.namedItem(name)?.value ?? ""),
        $$("input[name=keep]", form).map((box) => box.checked),
      ]);
    let saved = textState(); // what the server holds (the page as it was loaded, or the last save)
    let refused = null; // a state the server refused (bad fields): not retried until it changes
    let busy = false;
    let saving = null; // the autosave request on its way, which a Send waits for
    let leaving = false;

    const hasFiles = () => Boolean(files && files.files.length);
    const unsaved = () => textState() !== saved || hasFiles();

    function keep() {
      if (textState() === saved) {
        localStorage.removeItem(key);
        return;
      }
      const fields = {};
      TEXT_FIELDS.forEach((name) => (fields[name] = form.elements.namedItem(name)?.value ?? ""));
      const keepBoxes = $$("input[name=keep]", form).filter((box) => box.checked).map((box) => box.value);
      localStorage.setItem(key, JSON.stringify({ fields, keep: keepBoxes, open: true, touched: Date.now() }));
    }

    function showAlert(lines) {
      alertBox.replaceChildren(
        ...lines.map((line) => {
          const p = document.createElement("p");
          p.textContent = line;
          return p;
        }),
      );
      alertBox.hidden = lines.length === 0;
    }

    // Base64 turns every 3 bytes into 4, in lines of 76 characters plus CRLF.
    function encodedSize() {
      const encoded = (n) => Math.ceil(n / 3) * 4 * (78 / 76);
      const html = form.elements.namedItem("body_html");
      let total = 4096 + new Blob([form.elements.namedItem("body").value]).size;
      if (html && !html.disabled) total += new Blob([html.value]).size; // pasted images are in it
      Array.from(files?.files || []).forEach((file) => (total += encoded(file.size)));
      $$("input[name=keep]", form)
        .filter((box) => box.checked)
        .forEach((box) => (total += encoded(Number(box.dataset.size || 0))));
      return total;
    }

    const megabytes = (n) => `${(n / 1048576).toFixed(1).replace(/\.0$/, "")} MB`;

    function checkSize() {
      if (!maxSize) return true;
      const size = encodedSize();
      const fits = size <= maxSize;
      sizeError.hidden = fits;
      sizeError.textContent = fits
        ? ""
        : `These attachments are too big: the message would be ${megabytes(size)} once encoded for mail, ` +
          `and the limit is ${megabytes(maxSize)}. Remove some, or share big files as a link.`;
      return fits;
    }

    function stored(result) {
      form.elements.namedItem("draft").value = result.draft;
      // The new draft holds the ticked attachments in order; point the boxes at its copies.
      const boxes = $$("input[name=keep]", form);
      boxes.filter((box) => !box.checked).forEach((box) => box.closest("label").remove());
      boxes.filter((box) => box.checked).forEach((box, i) => (box.value = result.kept[i]));
      status.textContent = `Draft saved at ${new Date(result.saved).toLocaleTimeString()}`;
    }

    async function autosave() {
      const state = textState();
      if (busy || leaving || state === saved || state === refused) return;
      busy = true;
      const data = new FormData(form);
      data.delete("attachments"); // files are stored with the draft when the user saves or sends
      data.set("action", "autosave");
      saving = postForm(url, data);
      const result = await saving;
      saving = null;
      busy = false;
      if (leaving) return;
      if (result.status === 200) {
        saved = state;
        stored(result.body);
        if (!alertBox.hidden && alertBox.dataset.kind === "outage") {
          showAlert([`Saved as a draft at ${new Date(result.body.saved).toLocaleTimeString()}. It was not sent.`]);
        }
        keep();
      } else if (result.status === 400) {
        refused = state;
        status.textContent = "Draft not saved: check the fields";
      } else {
        status.textContent = `Draft not saved: ${result.body.error || "the server did not answer"} Kept in this browser.`;
      }
    }

    // "Undo send": the message waits in the page for the user's chosen delay before it goes to the server.
    function countdown(seconds) {
      return new Promise((resolve) => {
        const box = document.createElement("span");
        box.className = "send-countdown";
        box.setAttribute("role", "status");
        const label = document.createElement("span");
        const undo = document.createElement("button");
        undo.type = "button";
        undo.textContent = "Undo";
        box.append(label, " ", undo);
        $(".compose-actions", form).append(box);
        let left = seconds;
        const show = () => (label.textContent = `Sending in ${left} s…`);
        show();
        const timer = setInterval(() => {
          left -= 1;
          if (left > 0) return show();
          clearInterval(timer);
          box.remove();
          resolve(true);
        }, 1000);
        undo.addEventListener("click", () => {
          clearInterval(timer);
          box.remove();
          status.textContent = "Not sent: the message is still here.";
          resolve(false);
        });
      });
    }

    async function submit(event) {
      event.preventDefault();
      const action = event.submitter?.value || "send";
      // A click during an autosave is not lost: it goes once the autosave is answered (and knows the draft).
      if (saving) await saving;
      if (busy) return;
      if (!checkSize()) {
        sizeError.scrollIntoView({ block: "nearest" });
        return;
      }
      busy = true;
      keep();
      const buttons = $$("button[type=submit]", form);
      buttons.forEach((button) => (button.disabled = true));
      const delay = Number(form.dataset.undoSend || 0);
      if (action === "send" && delay > 0 && !(await countdown(delay))) {
        buttons.forEach((button) => (button.disabled = false));
        busy = false;
        return;
      }
      const data = new FormData(form);
      data.set("action", action);
      const result = await postForm(url, data);
      buttons.forEach((button) => (button.disabled = false));
      busy = false;
      if (result.status === 200 && result.body.location) {
        leaving = true;
        localStorage.removeItem(key);
        window.location.assign(result.body.location);
        return;
      }
      alertBox.dataset.kind = result.status === 400 ? "fields" : "outage";
      if (result.status === 400) {
        showAlert(result.body.problems || ["Check the fields."]);
        return;
      }
      const what = action === "send" ? "The message was not sent" : "The draft was not saved";
      showAlert([
        `${what}: ${result.body.error || `the server answered ${result.status}.`}`,
        "Your text is kept in this browser and will be saved as a draft as soon as the server answers again.",
      ]);
    }

    form.addEventListener("input", () => {
      refused = null;
      keep();
    });
    files?.addEventListener("change", checkSize);
    $$("input[name=keep]", form).forEach((box) => box.addEventListener("change", checkSize));
    form.addEventListener("submit", submit);
    setInterval(autosave, 3000);
    setInterval(() => textState() !== saved && keep(), 10000); // still open: not an orphan
    window.addEventListener("beforeunload", (event) => {
      if (!leaving && unsaved()) event.preventDefault();
    });
    window.addEventListener("pagehide", () => {
      const entry = localStorage.getItem(key);
      if (entry) localStorage.setItem(key, JSON.stringify({ ...JSON.parse(entry), open: false }));
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const zone = $("[data-detect=time-zone]");
    if (zone) zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    bindList();
    liveUpdates();
    document.addEventListener("keydown", shortcuts);
    $(".help-toggle")?.addEventListener("click", () => $("#shortcuts")?.showModal());
    $("[data-print]")?.addEventListener("click", () => window.print());
    // Undo is offered for a few seconds after a move, as mail clients do.
    $$("[data-undo]").forEach((form) => setTimeout(() => form.remove(), 10000));
    $$("form[data-confirm]").forEach((form) =>
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      }),
    );
    const compose = $("#compose-form");
    if (compose) {
      suggestions(compose);
      richEditor(compose); // first: the form's starting state includes what the editor made of the text
      composeForm(compose);
    }
    saveOrphans();
  });
})();
