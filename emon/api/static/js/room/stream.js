// The live stream (server-sent events) read with fetch(), so a dead connection is noticed by a
// watchdog and retried with capped exponential backoff and jitter. The session cookie authenticates.
const WATCHDOG_MS = 45000; // server heartbeats every ~15 s; silence this long means a dead stream
const BACKOFF_MAX_MS = 30000;

/** A parser for SSE framing: feed it text chunks, it calls onEvent(kind, data) per event. */
export function sseParser(onEvent) {
  let buf = "";
  let ev = { event: "message", data: [] };
  function line(l) {
    if (l === "") {
      if (ev.data.length) onEvent(ev.event, ev.data.join("\n"));
      ev = { event: "message", data: [] };
      return;
    }
    if (l.startsWith(":")) return; // comment (heartbeat)
    const i = l.indexOf(":");
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? "" : l.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") ev.event = value;
    else if (field === "data") ev.data.push(value);
  }
  return (chunk) => {
    buf += chunk;
    for (let m = /\r\n|\n|\r/.exec(buf); m; m = /\r\n|\n|\r/.exec(buf)) {
      if (m[0] === "\r" && m.index === buf.length - 1) break; // may be the first half of a CRLF
      line(buf.slice(0, m.index));
      buf = buf.slice(m.index + m[0].length);
    }
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Keep the stream open until ``stop()`` is called. ``purpose`` (or null) is sent as ``?purpose=``: without
 * one the victim's position is left out. Callbacks: onState("live"|"wait"|"off"), onOpen() after every
 * (re)connect (reload: there is no replay), onEvent(kind, json), onDenied() (refused at connect), and
 * onEnded(json) when the server ends the stream with ``event: end`` (token revoked, expired, signed out):
 * then it is not reopened — retrying with a dead credential would only hide that the room is blind.
 */
export function openStream({ purpose = null, onState, onOpen, onEvent, onDenied, onEnded = () => onDenied() }) {
  let running = true;
  let ctrl = null;
  (async () => {
    let attempt = 0;
    while (running) {
      ctrl = new AbortController();
      let watchdog = null;
      const kick = () => { clearTimeout(watchdog); watchdog = setTimeout(() => ctrl.abort(), WATCHDOG_MS); };
      try {
        kick();
        const url = purpose ? `api/v1/stream?purpose=${encodeURIComponent(purpose)}` : "api/v1/stream";
        const res = await fetch(url, {
          headers: { Accept: "text/event-stream" }, cache: "no-store", credentials: "same-origin", signal: ctrl.signal,
        });
        if (res.status === 401 || res.status === 403) { running = false; onDenied(); break; }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onState("live");
        onOpen();
        const push = sseParser((kind, data) => {
          let body;
          try { body = JSON.parse(data); } catch { return; }
          if (kind === "end") { running = false; ctrl.abort(); onEnded(body); return; }
          onEvent(kind, body);
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          kick();
          attempt = 0;
          push(value);
        }
      } catch {
        // a dropped or aborted connection: retried below
      } finally {
        clearTimeout(watchdog);
      }
      if (!running) break;
      onState("wait");
      attempt += 1;
      const delay = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** Math.min(attempt, 5));
      await sleep(delay / 2 + Math.random() * (delay / 2));
    }
    onState("off");
  })();
  return { stop() { running = false; if (ctrl) ctrl.abort(); } };
}
