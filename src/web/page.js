// Shows <time data-local> instants in the reader's own time zone. Without
// JavaScript the page still shows the circle's zone and UTC.
for (const el of document.querySelectorAll("time[data-local]")) {
  const at = new Date(el.getAttribute("datetime"));
  if (!isNaN(at)) {
    el.textContent = at.toLocaleString(undefined, {
      weekday: "long", day: "numeric", month: "long", year: "numeric",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    }) + " your time";
  }
}

// Proposes the browser's own time zone in pickers that ask for it
// (data-browser-zone="propose"): a person who has not chosen one yet sees
// their zone selected instead of UTC, and can still pick another.
const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (browserZone) {
  for (const select of document.querySelectorAll('select[data-browser-zone="propose"]')) {
    let option = [...select.options].find((o) => o.value === browserZone);
    if (!option) {
      option = new Option(browserZone, browserZone);
      select.prepend(option);
    }
    option.selected = true;
  }
}

// Adds a "Copy" button beside fields that name one (data-copy-button):
// without JavaScript, or without clipboard access, the field can still be
// selected and copied by hand.
if (navigator.clipboard) {
  for (const field of document.querySelectorAll("input[data-copy-button]")) {
    const button = document.getElementById(field.dataset.copyButton);
    const said = document.getElementById(field.dataset.copyStatus);
    if (!button) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(field.value);
        if (said) said.textContent = "Copied.";
      } catch {
        field.select();
        if (said) said.textContent = "Select the link and copy it by hand.";
      }
    });
  }
}
