// A <select data-autosubmit> sends its form as soon as it changes (the organization
// switcher, a member's role). Without this script each form has its own submit button.
// A static file, not an onchange="…" attribute: the Content-Security-Policy allows no
// inline script.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.requestSubmit();
});
