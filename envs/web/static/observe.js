// Multiverse page observer: injected into every page of a task's browser context before the
// page's own scripts run. It lists what a person would see — visible elements with stable
// integer ids, roles, names, values, checked states and text — and performs the DOM side of
// actions. Ids are JS expandos (not attributes), so the page's DOM and MutationObservers never
// see them. One global, window.__mv; nothing else is touched.
(() => {
  if (window.__mv) return;
  const INTERACTIVE = 'a[href],button,input,select,textarea,label,summary,[role],[onclick],[tabindex],[contenteditable=""],[contenteditable="true"]';
  const SKIP = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'HEAD', 'META', 'LINK', 'TITLE', 'BR', 'HR', 'DEFS', 'CLIPPATH']);
  const SHAPES = new Set(['circle', 'rect', 'ellipse', 'polygon', 'polyline', 'path', 'line', 'text']);
  const TEXTBOX_TYPES = new Set(['', 'text', 'email', 'password', 'search', 'tel', 'url', 'number', 'date', 'time', 'datetime-local', 'month', 'week']);
  const byId = new Map();
  let nextId = 1;
  const squash = (s, n) => {
    s = (s || '').replace(/\s+/g, ' ').trim();
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  };
  const idOf = (el) => {
    if (!el.__mvId) { el.__mvId = nextId++; byId.set(el.__mvId, el); }
    return el.__mvId;
  };
  const directText = (el) => {
    let s = '';
    for (const n of el.childNodes) if (n.nodeType === 3) s += n.nodeValue;
    return s.trim();
  };
  const visibleRect = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return null;
    if (r.bottom <= 0 || r.right <= 0 || r.top >= innerHeight || r.left >= innerWidth) return null;
    if (el.checkVisibility && !el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) return null;
    return r;
  };
  const ariaName = (el) => {
    const by = el.getAttribute('aria-labelledby');
    if (by) {
      const text = by.split(/\s+/).map((i) => document.getElementById(i)).filter(Boolean).map((l) => l.innerText).join(' ');
      if (text.trim()) return text;
    }
    return el.getAttribute('aria-label') || '';
  };
  const labelOf = (el) => {
    const aria = el.getAttribute('aria-label');
    if (aria) return aria;
    const by = el.getAttribute('aria-labelledby');
    if (by) { const l = document.getElementById(by); if (l) return l.innerText; }
    if (el.labels && el.labels.length) return el.labels[0].innerText;
    return el.getAttribute('placeholder') || el.getAttribute('title') || el.getAttribute('name') || '';
  };
  function describe(el, clickText) {
    const tag = el.tagName;
    const role = (el.getAttribute('role') || '').toLowerCase();
    const d = { tag: tag.toLowerCase(), role: '', name: '', value: null, checked: null, options: null, clickable: false, typeable: false, covers: false };
    if (el instanceof SVGElement) {
      const t = tag.toLowerCase();
      if (!SHAPES.has(t)) return null;
      d.role = t === 'text' ? 'text' : 'shape';
      d.name = t === 'text' ? squash(el.textContent, 80) : t + (el.getAttribute('fill') ? ' fill=' + el.getAttribute('fill') : '');
      d.clickable = true;
      return d;
    }
    if (tag === 'INPUT') {
      const type = (el.getAttribute('type') || '').toLowerCase();
      if (type === 'hidden') return null;
      if (type === 'checkbox' || type === 'radio') {
        d.role = type; d.name = squash(labelOf(el), 80); d.checked = el.checked; d.clickable = true;
      } else if (['button', 'submit', 'reset', 'image'].includes(type)) {
        d.role = 'button'; d.name = squash(el.value || labelOf(el), 80); d.clickable = true;
      } else if (TEXTBOX_TYPES.has(type)) {
        d.role = 'textbox'; d.name = squash(labelOf(el), 80); d.value = el.value; d.typeable = true; d.clickable = true;
        if (type && type !== 'text') d.inputType = type;
      } else {
        d.role = 'input'; d.name = squash(labelOf(el), 80); d.value = el.value; d.clickable = true;
        d.inputType = type;
      }
      return d;
    }
    if (tag === 'TEXTAREA') { d.role = 'textbox'; d.name = squash(labelOf(el), 80); d.value = el.value; d.typeable = d.clickable = true; return d; }
    if (tag === 'SELECT') {
      d.role = 'combobox'; d.name = squash(labelOf(el), 80); d.clickable = false;
      d.options = Array.from(el.options).map((o) => squash(o.text, 60));
      d.value = el.selectedIndex >= 0 ? squash(el.options[el.selectedIndex].text, 60) : '';
      d.covers = true;
      return d;
    }
    if (el.isContentEditable && (el.getAttribute('contenteditable') === '' || el.getAttribute('contenteditable') === 'true')) {
      d.role = 'textbox'; d.name = squash(labelOf(el), 80); d.value = el.innerText; d.typeable = d.clickable = d.covers = true; return d;
    }
    // Accessible name as the standard orders it: aria-labelledby/aria-label first, then the content.
    const named = () => squash(ariaName(el) || el.innerText || labelOf(el), 80);
    // An explicit role wins over the tag (<button role="tab"> is a tab).
    if (['tab', 'menuitem', 'option', 'treeitem', 'gridcell'].includes(role)) {
      d.role = role; d.name = named(); d.clickable = d.covers = true;
      if (el.getAttribute('aria-selected') === 'true') d.checked = true;
    }
    else if (role === 'checkbox' || role === 'radio' || role === 'switch') {
      d.role = role; d.name = named(); d.checked = el.getAttribute('aria-checked') === 'true'; d.clickable = d.covers = true;
    }
    else if (role === 'link' || (tag === 'A' && el.hasAttribute('href') && !role)) { d.role = 'link'; d.name = named(); d.clickable = d.covers = true; }
    else if (tag === 'BUTTON' || role === 'button') { d.role = 'button'; d.name = named(); d.clickable = d.covers = true; }
    else if (/^H[1-6]$/.test(tag)) { d.role = 'heading'; d.name = squash(el.innerText, 120); d.covers = true; }
    else if (tag === 'IMG') { d.role = 'img'; d.name = squash(el.getAttribute('alt') || el.getAttribute('title') || '', 80); }
    else if (tag === 'LABEL') {
      if (el.control) return null;  // the control's own line carries the label
      d.role = 'label'; d.name = squash(el.innerText, 120); d.clickable = d.covers = true;
    }
    else if (tag === 'SUMMARY') { d.role = 'button'; d.name = squash(el.innerText, 80); d.clickable = d.covers = true; }
    else {
      const own = directText(el);
      if (!own) return null;
      d.role = 'text';
      d.covers = !el.querySelector(INTERACTIVE);
      d.name = squash(d.covers ? el.innerText : own, 200);
      if (!d.name) return null;
      d.clickable = clickText || el.hasAttribute('onclick') || getComputedStyle(el).cursor === 'pointer';
    }
    if (!d.clickable && (el.hasAttribute('onclick') || el.hasAttribute('tabindex'))) d.clickable = true;
    return d;
  }
  function observe(opts) {
    opts = opts || {};
    const clickText = !!opts.clickText;
    const maxElements = opts.maxElements || 300;
    const out = [];
    const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_ELEMENT, {
      acceptNode(el) {
        if (SKIP.has(el.tagName.toUpperCase())) return NodeFilter.FILTER_REJECT;
        const cs = getComputedStyle(el);
        if (cs.display === 'none') return NodeFilter.FILTER_REJECT;
        return NodeFilter.FILTER_ACCEPT;
      },
    });
    let el = walker.currentNode;
    let truncated = false;
    while (el) {
      let skipChildren = false;
      if (el !== document.body && el.nodeType === 1) {
        const d = describe(el, clickText);
        if (d) {
          const r = visibleRect(el);
          if (r) {
            if (out.length >= maxElements) { truncated = true; break; }
            d.id = idOf(el);
            d.focused = document.activeElement === el;
            out.push(d);
            skipChildren = d.covers;
          }
        }
      }
      if (skipChildren) {
        let next = walker.nextSibling();
        let cur = el;
        while (!next && cur) { cur = walker.parentNode(); next = cur ? walker.nextSibling() : null; }
        el = next;
      } else {
        el = walker.nextNode();
      }
    }
    const se = document.scrollingElement || document.documentElement;
    return {
      elements: out,
      truncated,
      url: location.pathname + location.search,
      title: document.title,
      scrollUp: se.scrollTop > 0,
      scrollDown: se.scrollTop + se.clientHeight < se.scrollHeight - 1,
      state: window.__mvState === undefined ? null : window.__mvState,
    };
  }
  function element(id) {
    const el = byId.get(id);
    if (!el || !el.isConnected) return null;
    return el;
  }
  // A point inside the element that hit-tests to it (or a descendant). Each of its client rects
  // (an inline element wrapped over lines has several; its bounding box's centre may hit neither)
  // is tried centre first, then on a grid, so shapes such as pie slices also click.
  function clickPoint(id) {
    const el = element(id);
    if (!el) return { error: 'gone' };
    let r = visibleRect(el);
    if (!r) return { error: 'hidden' };
    if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) {
      el.scrollIntoView({ block: 'nearest', inline: 'nearest' });  // as a person would, before clicking
      r = visibleRect(el) || r;
    }
    const hit = (x, y) => {
      if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return false;
      const h = document.elementFromPoint(x, y);
      return h && (h === el || el.contains(h));
    };
    const boxes = Array.from(el.getClientRects()).filter((b) => b.width >= 1 && b.height >= 1);
    for (const b of boxes.length ? boxes : [r]) {
      const cx = b.left + b.width / 2, cy = b.top + b.height / 2;
      if (hit(cx, cy)) return { x: cx, y: cy };
    }
    for (const b of [...boxes, r]) {
      for (let i = 1; i < 8; i++) for (let j = 1; j < 8; j++) {
        const x = b.left + (b.width * i) / 8, y = b.top + (b.height * j) / 8;
        if (hit(x, y)) return { x, y };
      }
    }
    return { x: r.left + r.width / 2, y: r.top + r.height / 2, covered: true };
  }
  function focusForTyping(id) {
    const el = element(id);
    if (!el) return 'gone';
    el.scrollIntoView({ block: 'nearest' });
    el.focus();
    if (el.select) el.select();
    else if (el.isContentEditable) {
      const range = document.createRange(); range.selectNodeContents(el);
      const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
    }
    return document.activeElement === el ? 'ok' : 'unfocusable';
  }
  function selectOption(id, label) {
    const el = element(id);
    if (!el) return 'gone';
    if (el.tagName !== 'SELECT') return 'not a dropdown';
    const norm = (s) => s.replace(/\s+/g, ' ').trim().toLowerCase();
    const opts = Array.from(el.options);
    let o = opts.find((x) => x.text.replace(/\s+/g, ' ').trim() === label) || opts.find((x) => norm(x.text) === norm(label));
    if (!o) return 'no option';
    el.focus();
    el.value = o.value;
    o.selected = true;
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
    return 'ok';
  }
  function scroll(dir) {
    const sign = dir === 'up' ? -1 : 1;
    const se = document.scrollingElement || document.documentElement;
    const before = se.scrollTop;
    se.scrollTop = before + sign * Math.round(innerHeight * 0.8);
    if (se.scrollTop !== before) return 'ok';
    // the page itself does not scroll: scroll the largest visible scrollable box instead
    let best = null, area = 0;
    for (const el of document.querySelectorAll('*')) {
      if (el.scrollHeight <= el.clientHeight + 1) continue;
      const oy = getComputedStyle(el).overflowY;
      if (oy !== 'auto' && oy !== 'scroll') continue;
      const r = visibleRect(el);
      if (r && r.width * r.height > area) { best = el; area = r.width * r.height; }
    }
    if (!best) return 'nothing to scroll';
    const b = best.scrollTop;
    best.scrollTop = b + sign * Math.round(best.clientHeight * 0.8);
    return best.scrollTop !== b ? 'ok' : 'at the end';
  }
  // A step that starts a navigation waits for the next document: this flag marks the old one.
  // Chromium starts a form's or a link's navigation only after the click has returned, so the
  // flag is also set by the submit and the click themselves (window listeners run last, after
  // the page's own handlers had their chance to preventDefault).
  // Page.setContent (how a reset loads the task) runs document.open(), which erases every listener
  // on the window: listen() adds them again after it (the same functions, so adding twice is a no-op).
  const leaving = () => { window.__mvLeaving = true; };
  const onSubmit = (ev) => { if (!ev.defaultPrevented && (!ev.target.target || ev.target.target === '_self')) leaving(); };
  const onClick = (ev) => {
    const a = !ev.defaultPrevented && ev.target.closest && ev.target.closest('a[href]');
    if (!a || (a.target && a.target !== '_self') || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin === location.origin && url.pathname === location.pathname && url.search === location.search) return;  // in-page anchor
    leaving();
  };
  function listen() {
    addEventListener('beforeunload', leaving);
    addEventListener('submit', onSubmit);
    addEventListener('click', onClick);
  }
  listen();
  window.__mv = { observe, clickPoint, focusForTyping, selectOption, scroll, element, listen };
})();
