// The layout's behaviour, on every page. Progressive enhancement only: without this file
// the dashboard menu stays open and tables scroll in their box.

// On narrow screens the dashboard's menu folds behind its "Menu" button (CSS shows the
// button below 900px only; wider, the sidebar is always open).
function foldDashboardMenu() {
  const sidebar = document.querySelector(".sidebar");
  const toggle = sidebar?.querySelector(".menu-toggle");
  if (!toggle) return;
  sidebar.dataset.menu = "closed";
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    const open = sidebar.dataset.menu !== "open";
    sidebar.dataset.menu = open ? "open" : "closed";
    toggle.setAttribute("aria-expanded", String(open));
  });
}

// Tables become one card per row (CSS: table[data-stacked]) on phones, and wherever their
// columns do not fit; each cell is labelled with its column's header, and explicit roles
// keep a table for screen readers whatever the CSS display.
function labelTableCells(table) {
  const headers = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  if (!headers.length) return false;
  table.setAttribute("role", "table");
  for (const part of table.querySelectorAll("thead, tbody")) part.setAttribute("role", "rowgroup");
  for (const th of table.querySelectorAll("thead th")) th.setAttribute("role", "columnheader");
  for (const row of table.querySelectorAll("tr")) {
    row.setAttribute("role", "row");
    let column = 0;
    for (const cell of row.children) {
      if (cell.tagName === "TD") {
        cell.setAttribute("role", "cell");
        if (cell.colSpan === 1 && headers[column]) cell.dataset.label = headers[column];
      } else if (!cell.hasAttribute("role")) {
        cell.setAttribute("role", "rowheader");
      }
      column += cell.colSpan;
    }
  }
  table.dataset.stack = "";  // stackable: turns off the CSS's no-script fallback (scroll sideways)
  return true;
}

const phone = window.matchMedia("(max-width: 640px)");

function stackTables(tables) {
  for (const table of tables) delete table.dataset.stacked;  // measured as columns first
  for (const table of tables) {
    const room = table.parentElement.clientWidth;
    if (phone.matches || table.getBoundingClientRect().width > room + 1) table.dataset.stacked = "";
  }
}

function stackTablesThatDoNotFit() {
  const tables = [...document.querySelectorAll("main table")].filter(labelTableCells);
  if (!tables.length) return;
  stackTables(tables);
  let pending = false;
  window.addEventListener("resize", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; stackTables(tables); });
  });
}

// A code block that still scrolls sideways (one long token) can be scrolled from the
// keyboard too (WCAG 2.1.1): it joins the tab order.
function focusScrollingCode() {
  for (const pre of document.querySelectorAll("pre:not([tabindex])")) {
    if (pre.scrollWidth > pre.clientWidth + 1) pre.tabIndex = 0;
  }
}

foldDashboardMenu();
focusScrollingCode();
window.addEventListener("resize", focusScrollingCode);
stackTablesThatDoNotFit();
