// Article permalinks: clicking a heading's "#" link also copies the section's full URL.
// Without JavaScript (or clipboard access) the link still jumps to the section.
(() => {
  "use strict";
  const status = document.querySelector("[data-copy-status]");
  let timer;

  function announce(link, message) {
    link.classList.add("is-copied");
    if (status) status.textContent = message;
    clearTimeout(timer);
    timer = setTimeout(() => {
      link.classList.remove("is-copied");
      if (status) status.textContent = "";
    }, 2500);
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a.permalink");
    if (!link || !navigator.clipboard || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    // The page's own URL without any query string: …/kb/guide/article/#anchor.
    const url = new URL(link.getAttribute("href"), location.origin + location.pathname).href;
    // No preventDefault: the link still jumps to the section.
    navigator.clipboard.writeText(url).then(
      () => announce(link, "Link to this section copied"),
      () => {}, // Clipboard refused: the address bar has the same URL after the jump.
    );
  });
})();
