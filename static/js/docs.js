// The docs page's examples as tabs (curl, Python, Node): one choice for the whole page,
// kept across visits. Without this file every example is shown, one after another.
const STORED = "nexeon-docs-language";
const groups = Array.from(document.querySelectorAll("[data-examples]"));

function show(lang) {
  for (const group of groups) {
    const figures = Array.from(group.querySelectorAll("figure[data-lang]"));
    const chosen = figures.some((figure) => figure.dataset.lang === lang) ? lang : figures[0].dataset.lang;
    for (const figure of figures) figure.hidden = figure.dataset.lang !== chosen;
    for (const tab of group.querySelectorAll("[role=tab]")) {
      const selected = tab.dataset.lang === chosen;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
  }
}

for (const group of groups) {
  const figures = Array.from(group.querySelectorAll("figure[data-lang]"));
  if (figures.length < 2) continue;
  const tabs = document.createElement("div");
  tabs.className = "example-tabs";
  tabs.setAttribute("role", "tablist");
  for (const figure of figures) {
    const tab = document.createElement("button");
    tab.type = "button";
    tab.setAttribute("role", "tab");
    tab.dataset.lang = figure.dataset.lang;
    tab.setAttribute("aria-controls", figure.querySelector("pre").id);
    tab.textContent = figure.querySelector("figcaption").textContent;
    tab.addEventListener("click", () => {
      try {
        localStorage.setItem(STORED, tab.dataset.lang);
      } catch {
        // storage refused (private mode): the choice lasts for this page only
      }
      show(tab.dataset.lang);
    });
    tabs.append(tab);
  }
  group.prepend(tabs);
  group.classList.add("tabbed");
}

let initial = "curl";
try {
  initial = localStorage.getItem(STORED) || initial;
} catch {
  // no storage: curl first
}
show(initial);
