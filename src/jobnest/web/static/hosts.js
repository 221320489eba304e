// The task form's host field offers the hosts of the SSH config (GET /api/hosts) and stays
// free text: a host may be any name ssh understands. It is a combobox with a list (WAI-ARIA's
// pattern): focus or ↓ opens the list, typing filters it, ↑/↓ move, Enter picks, Escape
// closes. Each host says how it is reached; a host whose key is not known gets a warning.
"use strict";

// How a host is reached, in the words of `jobnest hosts`: "etl@10.0.4.17:2222 · key known".
function hostReach(host) {
  const via = host.proxy_jump ? ` via ${host.proxy_jump}` : "";
  return `${host.user}@${host.hostname}:${host.port}${via} · key ${host.key}`;
}

class HostPicker {
  // input: the text field, inside an element of class "combo"; hint, warning: its notes.
  constructor(input, hosts, hint, warning) {
    this.input = input;
    this.hosts = hosts;
    this.hint = hint;
    this.warning = warning;
    this.shown = []; // the hosts the open list shows
    this.active = -1; // the index in shown of the option ↑/↓ reached
    this.list = document.createElement("ul");
    this.list.id = `${input.id}-hosts`;
    this.list.setAttribute("role", "listbox");
    this.list.setAttribute("aria-label", "Hosts of the SSH config");
    this.list.hidden = true;
    input.closest(".combo").append(this.list);
    for (const [name, value] of [["role", "combobox"], ["aria-autocomplete", "list"], ["aria-expanded", "false"],
      ["aria-controls", this.list.id], ["aria-describedby", `${hint.id} ${warning.id}`]]) input.setAttribute(name, value);
    this.bind();
    this.describe();
  }

  bind() {
    this.input.addEventListener("focus", () => this.open(this.hosts));
    this.input.addEventListener("click", () => this.open(this.hosts));
    this.input.addEventListener("input", () => { this.describe(); this.open(this.matching()); });
    this.input.addEventListener("blur", () => this.close());
    this.input.addEventListener("keydown", (e) => this.key(e));
    this.list.addEventListener("mousedown", (e) => e.preventDefault()); // keep the focus in the field
    this.list.addEventListener("click", (e) => {
      const option = e.target.closest("[role=option]");
      if (option) this.pick(this.shown[Number(option.dataset.index)]);
    });
  }

  // The hosts whose name or address contains what was typed.
  matching() {
    const typed = this.input.value.trim().toLowerCase();
    return this.hosts.filter((h) => h.alias.toLowerCase().includes(typed) || h.hostname.toLowerCase().includes(typed));
  }

  open(hosts) {
    this.shown = hosts;
    this.active = -1;
    this.list.innerHTML = hosts.map((h, i) =>
      `<li role="option" id="${this.list.id}-${i}" data-index="${i}" aria-selected="false">` +
      `<span class="alias">${jn.esc(h.alias)}</span> <span class="muted small">${jn.esc(hostReach(h))}</span></li>`).join("");
    this.list.hidden = !hosts.length;
    this.input.setAttribute("aria-expanded", String(!this.list.hidden));
    this.input.removeAttribute("aria-activedescendant");
  }

  close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  key(e) {
    const down = e.key === "ArrowDown", up = e.key === "ArrowUp";
    if ((down || up) && this.list.hidden) {
      const some = this.matching();
      this.open(some.length ? some : this.hosts);
      if (!e.altKey) this.move(down ? 0 : this.shown.length - 1);
    } else if (down || up) this.move((this.active + (down ? 1 : -1) + this.shown.length) % this.shown.length);
    else if (e.key === "Enter" && !this.list.hidden && this.active >= 0) this.pick(this.shown[this.active]);
    else if (e.key === "Escape" && !this.list.hidden) this.close();
    else return;
    e.preventDefault();
  }

  move(index) {
    if (!this.shown.length) return;
    this.active = index;
    for (const option of this.list.children) option.setAttribute("aria-selected", String(Number(option.dataset.index) === index));
    const option = this.list.children[index];
    this.input.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }

  // Put the host in the field, and tell the form it changed.
  pick(host) {
    this.input.value = host.alias;
    this.close();
    this.describe();
    this.input.form.dispatchEvent(new Event("input"));
  }

  // Say how the host the field names is reached, and warn when its key is not known.
  describe() {
    const name = this.input.value.trim();
    const host = this.hosts.find((h) => h.alias === name);
    jn.show(this.hint, host ? hostReach(host) : "");
    jn.show(this.warning, host && host.key === "unknown"
      ? `⚠ Host key unknown: tasks on ${name} are refused until its key is accepted ` +
        `(jobnest hosts trust ${name}, or connect once with ssh).` : "");
  }
}
