// A task's output, a page at a time: the tail first, earlier pages on demand, and new bytes
// followed while the task runs. Only byte ranges are fetched (?offset=&length=), never a
// whole log, and at most MAX_SHOWN bytes stay on the page.
"use strict";

class LogView {
  static PAGE = 64 * 1024;
  static MAX_SHOWN = 512 * 1024;
  static FOLLOW_MS = 1000;

  // isLive() tells whether the attempt may still write: then new output is followed.
  constructor(container, runId, path, attempt, isLive) {
    this.el = container;
    this.base = `/api/runs/${runId}/tasks/${jn.path(path)}/log`;
    this.attempt = attempt;
    this.isLive = isLive;
    this.stream = "stdout";
    this.gen = 0;
    this.el.innerHTML =
      '<div class="tabs" role="tablist" aria-label="Output">' +
      '<button type="button" role="tab" data-stream="stdout" aria-selected="true">stdout</button>' +
      '<button type="button" role="tab" data-stream="stderr" aria-selected="false">stderr</button></div>' +
      '<div class="log-bar"><span class="log-where" aria-live="polite"></span><span class="actions">' +
      '<button type="button" data-log="first">From the start</button>' +
      '<button type="button" data-log="earlier">Earlier</button>' +
      '<button type="button" data-log="later">Later</button>' +
      '<button type="button" data-log="last">Latest</button></span></div>' +
      '<pre tabindex="0" role="tabpanel" aria-label="Task output"></pre>';
    this.pre = this.el.querySelector("pre");
    this.el.addEventListener("click", (e) => this.click(e));
    this.show("stdout");
  }

  // Catch up with what was written since the last look, e.g. once the task has ended.
  async refresh() {
    if (this.closed) return;
    if (!this.chunks || !this.chunks.length) return this.last();
    await this.later();
    this.follow();
  }

  close() {
    clearTimeout(this.timer);
    this.closed = true;
  }

  url(offset, length) {
    const params = new URLSearchParams({ stream: this.stream, offset: String(offset) });
    if (length != null) params.set("length", String(length));
    if (this.attempt) params.set("attempt", String(this.attempt));
    return `${this.base}?${params}`;
  }

  // Bytes [offset, offset + length) and the file's size; null when there is no output yet.
  async fetchRange(offset, length) {
    const response = await fetch(this.url(offset, length), { credentials: "same-origin" });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      return { missing: body.error || `the server answered ${response.status}` };
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    return { bytes, size: Number(response.headers.get("X-Log-Size") || 0) };
  }

  async show(stream) {
    this.stream = stream;
    for (const tab of this.el.querySelectorAll("[role=tab]")) tab.setAttribute("aria-selected", String(tab.dataset.stream === stream));
    await this.last();
  }

  async last() {
    clearTimeout(this.timer);
    const gen = ++this.gen;
    const got = await this.fetchRange(-LogView.PAGE, null);
    if (gen !== this.gen || this.settle(got)) return;
    this.chunks = [got.bytes];
    this.start = got.size - got.bytes.length;
    this.end = got.size;
    this.size = got.size;
    this.render(true);
    this.follow();
  }

  async first() {
    clearTimeout(this.timer);
    const gen = ++this.gen;
    const got = await this.fetchRange(0, LogView.PAGE);
    if (gen !== this.gen || this.settle(got)) return;
    this.chunks = [got.bytes];
    this.start = 0;
    this.end = got.bytes.length;
    this.size = got.size;
    this.render(false);
    this.pre.scrollTop = 0;
  }

  async earlier() {
    const gen = this.gen;
    const from = Math.max(0, this.start - LogView.PAGE);
    const got = await this.fetchRange(from, this.start - from);
    if (gen !== this.gen || this.settle(got)) return;
    this.chunks.unshift(got.bytes);
    this.start = from;
    this.size = got.size;
    this.trim(false);
    this.render(false);
    this.pre.scrollTop = 0;
  }

  // The next bytes after what is shown; one fetch at a time. Whether there were any.
  later() {
    if (!this.inflight) this.inflight = this.fetchLater().finally(() => { this.inflight = null; });
    return this.inflight;
  }

  async fetchLater() {
    const gen = this.gen;
    const got = await this.fetchRange(this.end, LogView.PAGE);
    if (gen !== this.gen || this.settle(got)) return false;
    this.chunks.push(got.bytes);
    this.end += got.bytes.length;
    this.size = Math.max(got.size, this.end);
    this.trim(true);
    this.render(true);
    return got.bytes.length > 0;
  }

  // Whether the fetch found no log (the task has not started): then say so.
  settle(got) {
    if (this.closed) return true;
    if (!got.missing) return false;
    this.chunks = [];
    this.start = this.end = this.size = 0;
    this.pre.textContent = "";
    this.el.querySelector(".log-where").textContent = got.missing;
    this.buttons();
    if (this.isLive()) this.timer = setTimeout(() => this.last(), LogView.FOLLOW_MS);
    return true;
  }

  // While the task runs, ask for what was written since the last look.
  follow() {
    clearTimeout(this.timer);
    if (this.closed) return;
    const live = this.isLive();
    if (!live && this.end >= this.size) return;
    this.timer = setTimeout(async () => {
      if (this.end < this.size || live) {
        const grew = await this.later();
        if (grew || this.isLive()) this.follow();
      }
    }, this.end < this.size ? 0 : LogView.FOLLOW_MS);
  }

  // Keep at most MAX_SHOWN bytes: drop whole pages from the end away from the reader.
  trim(fromStart) {
    let shown = this.end - this.start;
    while (shown > LogView.MAX_SHOWN && this.chunks.length > 1) {
      const dropped = fromStart ? this.chunks.shift() : this.chunks.pop();
      shown -= dropped.length;
      if (fromStart) this.start += dropped.length; else this.end -= dropped.length;
    }
  }

  render(stickToEnd) {
    const atEnd = this.pre.scrollHeight - this.pre.scrollTop - this.pre.clientHeight < 40;
    const joined = new Uint8Array(this.end - this.start);
    let at = 0;
    for (const chunk of this.chunks) { joined.set(chunk, at); at += chunk.length; }
    this.pre.textContent = new TextDecoder("utf-8").decode(joined);
    if (stickToEnd && atEnd) this.pre.scrollTop = this.pre.scrollHeight;
    const where = this.size === 0 ? "no output" :
      this.start === 0 && this.end >= this.size ? `${this.size} bytes` :
      `bytes ${this.start}–${this.end} of ${this.size}`;
    this.el.querySelector(".log-where").textContent = where + (this.isLive() ? " · following" : "");
    this.buttons();
  }

  buttons() {
    const hide = (name, hidden) => { this.el.querySelector(`[data-log="${name}"]`).hidden = hidden; };
    hide("first", this.start <= 0 || this.start <= LogView.PAGE);
    hide("earlier", this.start <= 0);
    hide("later", this.end >= this.size || this.isLive());
    hide("last", this.end >= this.size);
  }

  click(e) {
    const tab = e.target.closest("[data-stream]");
    if (tab) return this.show(tab.dataset.stream);
    const action = e.target.closest("[data-log]")?.dataset.log;
    if (action === "first") this.first();
    else if (action === "earlier") this.earlier();
    else if (action === "later") this.later();
    else if (action === "last") this.last();
  }
}
