// The layout checks of tests/e2e/test_every_page.py, run in Chromium: each returns a list
// of problems (empty when the page passes), so that a failure names every culprit.
window.nexeonLayoutChecks = {
  // Wider than the viewport: the document, or any table (a table that only fits by
  // scrolling its own box counts too: rows stack or columns fit instead).
  overflow: () => {
    const root = document.documentElement, limit = root.clientWidth, problems = [];
    const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
    if (root.scrollWidth > limit) {
      const wide = [...document.body.querySelectorAll('*')].filter((el) => {
        const box = el.getBoundingClientRect();
        return box.width && box.right > limit + 1;
      }).slice(0, 4).map((el) => `${name(el)} reaches ${Math.round(el.getBoundingClientRect().right)}px`);
      problems.push(`the page scrolls sideways (${root.scrollWidth}px in ${limit}px): ${wide.join(', ')}`);
    }
    for (const table of document.querySelectorAll('table')) {
      if (!table.getClientRects().length) continue;
      const box = table.getBoundingClientRect();
      const room = table.parentElement.clientWidth;
      if (box.width > room + 1 || box.right > limit + 1)
        problems.push(`${name(table)} is ${Math.round(box.width)}px wide in ${room}px`);
    }
    return problems;
  },

  // WCAG 1.4.11: a form field's boundary (its border, or its fill) against what surrounds it.
  fieldBoundaries: () => {
    const parse = (color) => {
      const [r, g, b, a = 1] = color.match(/[\d.]+/g).map(Number);
      return { r, g, b, a };
    };
    const luminance = ({ r, g, b }) => {
      const lin = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    };
    const over = (top, bottom) => ({
      r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
      b: top.b * top.a + bottom.b * (1 - top.a), a: 1,
    });
    const ratio = (x, y) => {
      const [l1, l2] = [luminance(x), luminance(y)].sort((p, q) => q - p);
      return (l1 + 0.05) / (l2 + 0.05);
    };
    const backdrop = (el) => {
      const layers = [];
      for (let node = el; node; node = node.parentElement) {
        const bg = parse(getComputedStyle(node).backgroundColor);
        if (bg.a > 0) layers.push(bg);
        if (bg.a >= 1) break;
      }
      return layers.reverse().reduce((under, layer) => over(layer, under), { r: 255, g: 255, b: 255, a: 1 });
    };
    const problems = [];
    const fields = document.querySelectorAll(
      'input:not([type=hidden]):not([type=checkbox]):not([type=radio]):not([type=submit]):not([type=button]), select, textarea');
    for (const field of fields) {
      if (!field.getClientRects().length) continue;
      const style = getComputedStyle(field);
      const outside = backdrop(field.parentElement);
      const fill = over(parse(style.backgroundColor), outside);
      const sides = ['Top', 'Right', 'Bottom', 'Left'].filter((side) => parseFloat(style[`border${side}Width`]) > 0);
      const border = sides.length === 4
        ? Math.min(...sides.map((side) => ratio(over(parse(style[`border${side}Color`]), fill), outside)))
        : 1;
      const best = Math.max(border, ratio(fill, outside));
      if (best < 3)
        problems.push(`${field.tagName.toLowerCase()}[name=${field.name}] boundary contrast ${best.toFixed(2)}:1 (< 3:1)`);
    }
    return problems;
  },

  // Chart text as rendered: an SVG scaled down to a phone shrinks its text with it.
  chartText: () => {
    const problems = [];
    for (const svg of document.querySelectorAll('svg.chart')) {
      if (!svg.getClientRects().length) continue;
      const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
      for (const text of svg.querySelectorAll('text')) {
        const size = parseFloat(getComputedStyle(text).fontSize) * scale;
        if (size < 11) { problems.push(`${svg.id} text "${text.textContent}" renders at ${size.toFixed(1)}px`); break; }
      }
    }
    return problems;
  },

  axe: async () => {
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } });
    return result.violations.map((v) => `${v.id}: ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
  },
};
