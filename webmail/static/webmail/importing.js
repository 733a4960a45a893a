// Import mail: while an import runs, ask for its progress each second and show it; when it ends, load the page
// again for the report and the form.
(function () {
  "use strict";
  const section = document.getElementById("import-progress");
  if (!section || !section.hasAttribute("data-active")) return;
  const field = (name) => section.querySelector(`[data-field="${name}"]`);
  const bar = section.querySelector("progress");

  function show(status) {
    field("state").textContent = status.state === "queued" ? "Waiting to start" : "Importing";
    field("messages").textContent = `${status.messages_done} of ${status.messages_total} messages`;
    field("folders").textContent = `${status.folders_done} of ${status.folders_total} folders`;
    field("folder").textContent = status.folder ? `, now ${status.folder}` : "";
    field("summary").textContent =
      `${status.imported} imported, ${status.already} there already, ${status.skipped.length} skipped`;
    bar.max = Math.max(status.messages_total, 1);
    bar.value = status.messages_done;
    const list = section.querySelector(".import-skipped");
    list.replaceChildren(
      ...status.skipped.map(([where, reason]) => {
        const item = document.createElement("li");
        const place = document.createElement("b");
        place.textContent = where;
        item.append(place, `: ${reason}`);
        return item;
      }),
    );
    field("skipped").hidden = status.skipped.length === 0;
  }

  async function poll() {
    try {
      const response = await fetch(section.dataset.status, { headers: { "X-Requested-With": "fetch" } });
      if (response.ok) {
        const status = await response.json();
        if (!status.active) {
          window.location.reload();
          return;
        }
        show(status);
      }
    } catch (error) {
      // The server is out of reach for a moment: ask again at the next tick.
    }
    window.setTimeout(poll, 1000);
  }

  window.setTimeout(poll, 1000);
})();
