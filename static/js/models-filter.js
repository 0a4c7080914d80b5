// The models page's filters as one types (the form also works without this file).
const form = document.querySelector("[data-models-filter]");
if (form) {
  const cards = Array.from(document.querySelectorAll(".model-card"));
  const count = document.querySelector("[data-models-count]");
  const apply = () => {
    const words = form.q.value.toLowerCase().replace(/_/g, " ").split(/\s+/).filter(Boolean);
    const mode = form.mode.value;
    const availableOnly = form.available.checked;
    let shown = 0;
    let available = 0;
    for (const card of cards) {
      const keep =
        (!mode || card.dataset.mode === mode) &&
        (!availableOnly || card.dataset.available === "1") &&
        words.every((word) => card.dataset.search.includes(word));
      card.hidden = !keep;
      if (keep) {
        shown += 1;
        if (card.dataset.available === "1") available += 1;
      }
    }
    count.textContent = `${shown} model${shown === 1 ? "" : "s"}, ${available} available on this server.`;
  };
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
}
