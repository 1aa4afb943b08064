// Case page: naming a resolving section or ticking "content is missing" resolves the case,
// so pick "Resolved" for the staff member. Without JavaScript the form explains it instead.
(() => {
  "use strict";
  const form = document.querySelector("[data-case-form]");
  if (!form) return;
  const { status, section, content_missing: missing } = form.elements;
  const resolve = () => {
    if (section.value.trim() || missing.checked) status.value = "resolved";
  };
  section.addEventListener("change", resolve);
  missing.addEventListener("change", resolve);
})();
