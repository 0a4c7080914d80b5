// Progressive enhancement only: every page works without this file.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch {
    window.getSelection().selectAllChildren(source);
    button.textContent = "Press Ctrl+C";
  }
});

// Every code block of the docs page gets a copy button, handled above.
document.querySelectorAll(".docs pre").forEach((pre, index) => {
  if (!pre.id) pre.id = `code-${index + 1}`;
  const wrapper = document.createElement("div");
  wrapper.className = "code-block";
  pre.replaceWith(wrapper);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.dataset.copy = `#${pre.id}`;
  button.textContent = "Copy";
  wrapper.append(button, pre);
});
