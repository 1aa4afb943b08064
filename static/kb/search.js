// Search box suggestions (section titles as you type) and, on the results page, a beacon
// saying which result was opened. Both are enhancements: search works without them.
(() => {
  "use strict";

  for (const form of document.querySelectorAll("form[data-suggest]")) {
    const input = form.querySelector("input[name=q]");
    const box = form.querySelector("[data-suggestions]");
    const list = box && box.querySelector("ul");
    if (!input || !list) continue;
    let timer = 0;
    let controller = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const typed = input.value.trim();
        if (controller) controller.abort();
        if (typed.length < 2 || typed.length > 100) { box.hidden = true; return; }
        controller = new AbortController();
        try {
          const url = `${form.dataset.suggest}?q=${encodeURIComponent(typed)}`;
          const response = await fetch(url, { signal: controller.signal, headers: { Accept: "application/json" } });
          if (!response.ok) return;
          const { suggestions } = await response.json();
          list.replaceChildren(...suggestions.map((s) => {
            const item = document.createElement("li");
            const link = document.createElement("a");
            link.href = s.url;
            link.textContent = s.title;
            const where = document.createElement("span");
            where.className = "muted";
            where.textContent = ` — ${s.article_title}`;
            item.append(link, where);
            return item;
          }));
          box.hidden = suggestions.length === 0;
        } catch (error) {
          if (error.name !== "AbortError") box.hidden = true;
        }
      }, 150);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") box.hidden = true;
    });
  }

  const results = document.querySelector("[data-opened]");
  const csrf = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (results && csrf) {
    results.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-section]");
      if (!link) return;
      const body = new FormData();
      body.append("section", link.dataset.section);
      body.append("csrfmiddlewaretoken", decodeURIComponent(csrf[1]));
      navigator.sendBeacon(results.dataset.opened, body);
    });
  }
})();
