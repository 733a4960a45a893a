// Mailsite webmail: progressive enhancement over server-rendered pages. Every feature also works without it
// (links and forms), except live updates, keyboard shortcuts, autosave and address suggestions.
"use strict";

(function () {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const fetchHeaders = { "X-Requested-With": "fetch" };

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
    if (!reader || !href.includes("/m/")) {
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
      if (target.closest("input, button, select, label")) return;
      const row = target.closest(".row");
      if (!row) return;
      event.preventDefault();
      openRow(row).catch(() => (window.location.href = row.dataset.href));
    });
    list.addEventListener("change", (event) => {
      if (event.target.matches(".select-all")) {
        $$("input[name=uid]", list).forEach((box) => (box.checked = event.target.checked));
      }
    });
  }

  let refreshing = null;
  async function refreshList() {
    const list = $("#list");
    if (!list || !list.dataset.src) return;
    const html = await fetchText(list.dataset.src);
    // Read the selection only now: a box ticked while the fetch was under way must stay ticked.
    const checked = new Set($$("input[name=uid]:checked", list).map((box) => box.value));
    const openId = $("#list .row.open-now")?.dataset.id;
    const cursorId = $("#list .row.cursor")?.dataset.id;
    list.innerHTML = html;
    $$("input[name=uid]", list).forEach((box) => (box.checked = checked.has(box.value)));
    if (openId) $(`#list .row[data-id="${openId}"]`)?.classList.add("open-now");
    if (cursorId) $(`#list .row[data-id="${cursorId}"]`)?.classList.add("cursor");
  }

  async function refreshFolders() {
    const folders = $("#folders");
    if (!folders || !folders.dataset.src) return;
    folders.innerHTML = await fetchText(folders.dataset.src);
  }

  function refreshAll() {
    if (refreshing) return;
    refreshing = Promise.allSettled([refreshList(), refreshFolders()]).finally(() => (refreshing = null));
  }

  function liveUpdates() {
    const url = document.body.dataset.events;
    if (!url || !window.EventSource || !$("#list")) return;
    const source = new EventSource(url);
    source.addEventListener("change", refreshAll);
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
    const box = row && $("input[name=uid]", row);
    const button = $("#list button[value=trash], #list button[value=delete]");
    if (box && button) {
      $$("#list input[name=uid]").forEach((other) => (other.checked = false));
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

  function autosave(form) {
    const status = $(".draft-status", form);
    let dirty = false;
    let stopped = false;
    form.addEventListener("input", () => (dirty = true));
    form.addEventListener("submit", () => (stopped = true));
    setInterval(async () => {
      if (!dirty || stopped) return;
      dirty = false;
      const data = new FormData(form);
      data.delete("attachments"); // files are stored with the draft when the user saves or sends
      data.set("action", "autosave");
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body: data,
          headers: fetchHeaders,
          credentials: "same-origin",
        });
        if (stopped) return;
        const result = await response.json();
        if (!response.ok) {
          status.textContent = "Draft not saved: check the fields";
          return;
        }
        form.elements.draft.value = result.draft;
        // The new draft holds the ticked attachments in order; point the boxes at its copies.
        const boxes = $$("input[name=keep]", form);
        boxes.filter((box) => !box.checked).forEach((box) => box.closest("label").remove());
        boxes.filter((box) => box.checked).forEach((box, i) => (box.value = result.kept[i]));
        status.textContent = `Draft saved at ${new Date(result.saved).toLocaleTimeString()}`;
      } catch (error) {
        status.textContent = "Draft not saved (offline?)";
        dirty = true;
      }
    }, 3000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    bindList();
    liveUpdates();
    document.addEventListener("keydown", shortcuts);
    $(".help-toggle")?.addEventListener("click", () => $("#shortcuts")?.showModal());
    $$("form[data-confirm]").forEach((form) =>
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      }),
    );
    const compose = $("#compose-form");
    if (compose) {
      suggestions(compose);
      autosave(compose);
    }
  });
})();
