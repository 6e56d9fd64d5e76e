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
