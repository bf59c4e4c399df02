// The controller's "Broadcast" panel: SFU publish targets and recording
// (and input, when its devices were lost),
// read from and driven through the agent's /api/control with this page's
// own link token (only a controller's is accepted). Hidden for other roles
// and when the agent has nothing to control.

const POLL_MS = 2000;

export class ControlPanel {
  constructor(root, token) {
    this.root = root;
    this.token = token;
    this.timer = null;
    this.last = null;
    root.addEventListener('click', (e) => {
      const b = e.target.closest('button[data-what]');
      if (b) this.send(b.dataset.what, b.dataset.target || null, b.dataset.on === 'true');
    });
  }

  /** Show the panel (controller) or hide it (anyone else). */
  setRole(role) {
    clearInterval(this.timer);
    this.timer = null;
    if (role !== 'controller') {
      this.root.hidden = true;
      return;
    }
    this.refresh();
    this.timer = setInterval(() => this.refresh(), POLL_MS);
  }

  async request(body) {
    const r = await fetch('/api/control', {
      method: body ? 'POST' : 'GET',
      headers: { Authorization: `Bearer ${this.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const v = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(v.error ?? `HTTP ${r.status}`);
    return v;
  }

  async refresh() {
    try {
      this.render(await this.request(null));
    } catch {
      this.root.hidden = true;
    }
  }

  async send(what, target, on) {
    const body = what === 'publish' ? { publish: { target, on } } : { record: { on } };
    try {
      this.render(await this.request(body));
    } catch (e) {
      this.render(this.last, e.message);
    }
  }

  render(status, error = null) {
    this.last = status;
    const targets = status?.publish ?? [];
    const rec = status?.recording ?? null;
    // Input is listed only when something is wrong with it (uinput lost).
    const inputProblem = typeof status?.input?.problem === 'string' ? status.input : null;
    this.root.hidden = !targets.length && !rec && !inputProblem;
    if (this.root.hidden) return;
    this.root.replaceChildren();
    const row = (label, state, detail, what, target, on) => {
      const li = document.createElement('li');
      li.dataset.state = state;
      const name = document.createElement('span');
      name.textContent = `${label}: ${state}`;
      li.append(name);
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = on ? 'Start' : 'Stop';
      b.dataset.what = what;
      b.dataset.target = target ?? '';
      b.dataset.on = String(on);
      li.append(b);
      if (detail) {
        const d = document.createElement('div');
        d.className = 'detail';
        d.textContent = detail;
        li.append(d);
      }
      this.root.append(li);
    };
    for (const t of targets) {
      row(t.name === t.kind ? t.kind : `${t.kind} ${t.name}`, t.state, t.state === 'retrying' ? t.error : null, 'publish', t.name, t.state === 'stopped');
    }
    if (rec) {
      const active = !!rec.active;
      // A recording that ended on its own (a full disk) says why until
      // the next one starts; Start tries again.
      const failed = !active && rec.error && typeof rec.error.message === 'string';
      const state = active ? 'recording' : failed ? 'failed' : 'stopped';
      row('recording', state, failed ? rec.error.message : rec.path ?? null, 'record', null, !active);
    }
    if (inputProblem) {
      const li = document.createElement('li');
      li.dataset.state = inputProblem.backend === 'none' ? 'failed' : 'retrying';
      li.dataset.what = 'input';
      const name = document.createElement('span');
      name.textContent = `input: ${inputProblem.backend === 'none' ? 'off' : inputProblem.backend}`;
      const d = document.createElement('div');
      d.className = 'detail';
      d.textContent = inputProblem.problem;
      li.append(name, d);
      this.root.append(li);
    }
    if (error) {
      const li = document.createElement('li');
      li.className = 'detail';
      li.textContent = error;
      this.root.append(li);
    }
  }
}
