// The traveller's guidance page: draws the view the gate pushes over server-sent events.
// No logic of its own: every tap is posted to the gate, which pushes the new view.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const offline = JSON.parse($("offline").textContent);
  const S = 'class="pg-stroke"', F = 'class="pg-fill"';
  const person = (x) => `<circle ${F} cx="${x}" cy="42" r="15"/><path ${S} d="M${x} 62 V118 M${x} 118 L${x - 18} 168 M${x} 118 L${x + 18} 168 M${x - 24} 84 L${x} 72 L${x + 24} 84"/>`;
  // 200x200 pictograms in the text colour; the animated part carries an a-* class.
  const PICTO = {
    passport: `<rect ${S} x="28" y="156" width="144" height="22" rx="6"/>
      <g class="a-lay"><rect ${S} x="60" y="28" width="80" height="112" rx="8"/><circle ${S} cx="100" cy="72" r="18"/>
      <path ${S} d="M76 112 H124 M82 126 H118"/></g>`,
    look: `<rect ${S} x="38" y="56" width="124" height="84" rx="14"/><circle ${S} cx="100" cy="98" r="24"/>
      <circle ${F} cx="100" cy="98" r="9"/><rect ${F} x="72" y="44" width="30" height="12" rx="4"/>
      <circle class="pg-stroke a-pulse" cx="100" cy="96" r="40"/>`,
    blink: `<g class="a-blink"><path ${S} d="M22 100 Q100 30 178 100 Q100 170 22 100 Z"/><circle ${F} cx="100" cy="100" r="24"/>
      <circle class="pg-cut" cx="108" cy="92" r="7"/></g>`,
    finger: `<rect ${F} x="36" y="160" width="128" height="18" rx="6"/><path ${S} d="M62 150 H138"/>
      <g class="a-press"><path ${S} d="M78 150 V62 Q78 36 100 36 Q122 36 122 62 V150"/><path ${S} d="M90 62 Q100 52 110 62"/></g>`,
    walk: `<g>${person(70)}</g><g class="a-ahead"><path ${S} d="M120 100 H176 M156 78 L178 100 L156 122"/></g>`,
    wait: `<circle ${S} cx="100" cy="100" r="64" opacity="0.35"/><path class="pg-stroke a-spin" d="M100 36 A64 64 0 0 1 164 100"/>`,
    step_back: `<g>${person(130)}</g><g class="a-back"><path ${S} d="M80 100 H24 M44 78 L22 100 L44 122"/></g>`,
    officer: `<g class="a-throb"><path ${F} d="M62 46 Q100 14 138 46 L132 58 H68 Z"/><circle ${F} cx="100" cy="78" r="22"/>
      <path ${F} d="M46 176 Q46 112 100 108 Q154 112 154 176 Z"/><path class="pg-cut" d="M100 128 l6 12 h13 l-10 8 4 13 -13 -8 -13 8 4 -13 -10 -8 h13 z"/></g>`,
    one: `<g>${person(100)}</g><circle ${S} cx="160" cy="48" r="26"/><path ${S} d="M153 40 L162 34 V64"/>`,
    bag: `<g class="a-throb"><path ${S} d="M72 74 V58 Q72 40 100 40 Q128 40 128 58 V74"/><rect ${S} x="44" y="74" width="112" height="96" rx="14"/></g>`,
    closed: `<circle ${S} cx="100" cy="100" r="70"/><rect ${F} x="54" y="88" width="92" height="24" rx="6"/>`,
    exit: `<path ${S} d="M36 176 V36 H100 M36 176 H100"/><path ${S} d="M36 36 L72 52 V190 L36 176"/>
      <g class="a-ahead"><path ${S} d="M104 106 H172 M150 84 L172 106 L150 128"/></g>`,
  };
  let view = null, downSince = Date.now(), shownKey = "", langsKey = "";

  function post(path, body) {
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .catch(() => null);
  }

  function setText(el, text, lang) {
    if (el.textContent !== text) el.textContent = text;
    if (lang && el.getAttribute("lang") !== lang) el.setAttribute("lang", lang);
  }

  function drawPictogram(name) {
    const box = $("picto");
    if (box.dataset.name === name) return;
    box.dataset.name = name;
    box.innerHTML = `<svg viewBox="0 0 200 200" xmlns="http://www.w3.org/2000/svg">${PICTO[name] || PICTO.wait}</svg>`;
    document.body.dataset.pictogram = name;
  }

  function drawOthers(others) {
    const list = $("others");
    const key = JSON.stringify(others);
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(...others.map((o) => {
      const li = document.createElement("li");
      li.lang = o.lang;
      li.textContent = o.text;
      return li;
    }));
  }

  function drawLanguages(v) {
    const key = JSON.stringify(v.languages);
    if (key === langsKey) return;
    langsKey = key;
    $("langs").replaceChildren(...v.languages.map((l) => {
      const b = document.createElement("button");
      b.type = "button";
      b.lang = l.code;
      b.textContent = l.name;
      b.dataset.lang = l.code;
      b.setAttribute("aria-pressed", String(l.selected));
      b.addEventListener("click", () => post("/api/language", { lang: l.code }));
      return b;
    }));
  }

  function drawRating(v) {
    const box = $("rating"), r = v.rating;
    box.hidden = !r;
    if (!r) return;
    setText($("rate-prompt"), v.ui.rate_prompt, v.lang);
    for (const b of box.querySelectorAll(".face")) {
      const choice = r.choices.find((c) => c.value === b.dataset.rating);
      setText(b.querySelector(".face-label"), choice.label, v.lang);
      b.setAttribute("aria-pressed", String(r.rated === choice.value));
      b.disabled = Boolean(r.rated);
      b.dataset.token = r.token;
    }
    setText($("rate-thanks"), r.rated ? v.ui.rating_thanks : "", v.lang);
  }

  function render(v) {
    view = v;
    document.documentElement.lang = v.lang;
    const cls = [`tone-${v.tone}`];
    if (v.display.high_contrast) cls.push("hc");
    if (v.display.large_text) cls.push("large");
    document.body.className = cls.join(" ");
    document.documentElement.classList.toggle("large", Boolean(v.display.large_text));   // rem scales from the root
    document.body.dataset.state = v.state || "";
    document.body.dataset.message = v.id || "";
    drawPictogram(v.pictogram);
    const key = `${v.id}|${v.lang}|${v.text}`;
    if (key !== shownKey) {
      shownKey = key;
      setText($("message"), v.text, v.lang);
    }
    drawOthers(v.others);
    drawLanguages(v);
    $("langs").setAttribute("aria-label", v.ui.language);
    $("options").setAttribute("aria-label", v.ui.display);
    $("main").setAttribute("aria-label", v.ui.guidance);
    setText($("contrast").querySelector(".label"), v.ui.high_contrast, v.lang);
    setText($("large").querySelector(".label"), v.ui.larger_text, v.lang);
    $("contrast").setAttribute("aria-pressed", String(v.display.high_contrast));
    $("large").setAttribute("aria-pressed", String(v.display.large_text));
    drawRating(v);
    document.body.dataset.seq = String(v.seq);
  }

  function showOffline() {
    const codes = Object.keys(offline);
    document.body.className = "tone-stop";
    document.documentElement.classList.remove("large");
    document.body.dataset.state = "offline";
    document.body.dataset.message = "gate.out_of_service";
    drawPictogram("closed");
    shownKey = "offline";
    setText($("message"), offline[codes[0]], codes[0]);
    drawOthers(codes.slice(1).map((c) => ({ lang: c, text: offline[c] })));
    $("rating").hidden = true;
  }

  $("contrast").addEventListener("click", () => view && post("/api/display", { high_contrast: !view.display.high_contrast }));
  $("large").addEventListener("click", () => view && post("/api/display", { large_text: !view.display.large_text }));
  for (const b of document.querySelectorAll(".face")) {
    b.addEventListener("click", () => post("/api/rating", { token: b.dataset.token, rating: b.dataset.rating }));
  }

  const events = new EventSource("/events");
  events.onopen = () => { downSince = null; };
  events.onmessage = (e) => { downSince = null; render(JSON.parse(e.data)); };
  events.onerror = () => { if (downSince === null) downSince = Date.now(); };
  drawPictogram("wait");
  // Lost the gate for 3 s: say the lane is closed, in every language, rather than leave stale guidance.
  setInterval(() => {
    if (events.readyState !== EventSource.OPEN && downSince !== null && Date.now() - downSince > 3000) showOffline();
  }, 500);
})();
