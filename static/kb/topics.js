// Topics filter: hides topics that do not contain every typed word, and says how many match.
// Progressive enhancement: without JavaScript the filter stays hidden and the full list shows.
(() => {
  "use strict";
  const filter = document.querySelector("[data-topic-filter]");
  if (!filter) return;
  const input = filter.querySelector("input");
  const count = document.getElementById("topic-count");
  const none = document.querySelector("[data-topic-none]");
  const topics = Array.from(document.querySelectorAll("[data-topic]"), (item) => ({
    item,
    text: item.textContent.toLowerCase(),
  }));
  const groups = document.querySelectorAll("[data-topic-group]"); // guides and articles
  const total = topics.length;
  const noun = (n) => (n === 1 ? "topic" : "topics");

  function apply() {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const { item, text } of topics) {
      const match = words.every((word) => text.includes(word));
      item.hidden = !match;
      if (match) shown += 1;
    }
    for (const group of groups) {
      group.hidden = !group.querySelector("[data-topic]:not([hidden])");
    }
    count.textContent = words.length
      ? `${shown} of ${total} ${noun(total)} match`
      : `${total} ${noun(total)}`;
    if (none) none.hidden = shown > 0 || total === 0;
  }

  let frame = 0;
  input.addEventListener("input", () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(apply);
  });
  filter.hidden = false;
  if (input.value) apply(); // The browser may restore a typed value on back navigation.
})();
