// Boxes that scroll (article code and tables, long pastes, wide desk tables) take keyboard
// focus, so people without a mouse can scroll them with the arrow keys (WCAG 2.1.1). Boxes
// that fit stay out of the tab order; a resize or an opened <details> checks again.
(() => {
  "use strict";
  const BOXES = "main pre, main table, main .desk-table-wrap";

  function scrolls(box) {
    const style = getComputedStyle(box);
    const x = /auto|scroll/.test(style.overflowX) && box.scrollWidth > box.clientWidth;
    const y = /auto|scroll/.test(style.overflowY) && box.scrollHeight > box.clientHeight;
    return x || y;
  }

  function mark() {
    for (const box of document.querySelectorAll(BOXES)) {
      if (scrolls(box)) {
        if (!box.hasAttribute("tabindex")) {
          box.setAttribute("tabindex", "0");
          box.dataset.scrollFocus = "";
        }
      } else if ("scrollFocus" in box.dataset) {  // only what this script made focusable
        box.removeAttribute("tabindex");
        delete box.dataset.scrollFocus;
      }
    }
  }

  let pending = false;
  function markSoon() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; mark(); });
  }

  mark();
  window.addEventListener("resize", markSoon);
  document.addEventListener("toggle", markSoon, true); // <details> opened or closed; toggle does not bubble
})();
