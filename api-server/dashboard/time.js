// Timestamps are stored in UTC and shown in the workspace's time zone, with UTC on hover (README
// "The dashboard").

function formatter(timeZone) {
  return new Intl.DateTimeFormat(undefined, {
    timeZone, year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
  });
}

/** A <time> element in the workspace time zone, with the UTC instant as its tooltip. */
export function timeEl(h, iso, timeZone, empty = '—') {
  if (!iso) return empty;
  const date = new Date(iso);
  return h('time', { datetime: iso, title: `${date.toISOString()} (UTC)` },
    formatter(timeZone).format(date));
}

export function formatInstant(iso, timeZone) {
  return formatter(timeZone).format(new Date(iso));
}

/** Minutes east of UTC that `timeZone` is at the instant `ms`. */
function offsetMinutes(ms, timeZone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute,
    +parts.second);
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
}

/**
 * The UTC instant of a wall-clock time on `date` (YYYY-MM-DD) in `timeZone`, as ISO 8601.
 * Two passes settle the offset around daylight-saving changes.
 */
export function zonedToUtc(date, timeZone, hour = 0, minute = 0, second = 0) {
  const [y, m, d] = date.split('-').map(Number);
  const wall = Date.UTC(y, m - 1, d, hour, minute, second);
  let instant = wall - offsetMinutes(wall, timeZone) * 60000;
  instant = wall - offsetMinutes(instant, timeZone) * 60000;
  return new Date(instant).toISOString();
}

/** Today's date (YYYY-MM-DD) in `timeZone`, shifted by `days`. */
export function dateIn(timeZone, days = 0) {
  const ms = Date.now() + days * 86400000;
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit',
    day: '2-digit' }).format(new Date(ms));
}
