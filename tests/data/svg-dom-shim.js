// A tiny DOM for running the flame graph's embedded script under node, for
// tests/integration/test_encoders.py: hover, zoom, reset and search must work.
const fs = require('fs');
const src = fs.readFileSync(process.argv[2], 'utf8');
function El(tag, attrs) { this.tagName = tag; this.attrs = attrs; this.children = []; this.text = ''; this.listeners = {}; }
El.prototype.getAttribute = function (k) { return k in this.attrs ? this.attrs[k] : null; };
El.prototype.setAttribute = function (k, v) { this.attrs[k] = String(v); };
El.prototype.addEventListener = function (t, f) { (this.listeners[t] = this.listeners[t] || []).push(f); };
El.prototype.fire = function (t) { (this.listeners[t] || []).forEach(f => f({ stopPropagation() {}, preventDefault() {} })); if (this['on' + t]) this['on' + t]({stopPropagation() {}}); };
El.prototype.getElementsByTagName = function (tag) { const out = []; (function w(e) { e.children.forEach(c => { if (c.tagName === tag) out.push(c); w(c); }); })(this); return out; };
Object.defineProperty(El.prototype, 'textContent', { get() { return this.text + this.children.map(c => c.textContent).join(''); }, set(v) { this.text = v; this.children = []; } });
const root = new El('#doc', {}); const stack = [root]; const byId = {};
const re = /<(\/?)([a-zA-Z]+)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>|<!\[CDATA\[([\s\S]*?)\]\]>|<\?[^>]*\?>|([^<]+)/g;
let m, script = '';
const unesc = s => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
while ((m = re.exec(src))) {
  if (m[5] !== undefined) { script += m[5]; continue; }
  if (m[6] !== undefined) { stack[stack.length - 1].text += unesc(m[6]); continue; }
  if (!m[2]) continue;
  if (m[1]) { stack.pop(); continue; }
  const attrs = {}; (m[3] || '').replace(/([\w:-]+)="([^"]*)"/g, (_, k, v) => { attrs[k] = unesc(v); });
  const e = new El(m[2], attrs); stack[stack.length - 1].children.push(e); if (attrs.id) byId[attrs.id] = e;
  if (!m[4]) stack.push(e);
}
const svg = root.children[0];
global.document = { documentElement: svg, getElementById: id => byId[id], addEventListener() {} };
let answers = ['crunch|deep', ''];
global.prompt = () => answers.shift(); global.alert = (m) => { throw new Error('alert ' + m); };
eval(script + '; global.init = init;');
init();
const frames = byId['frames'].getElementsByTagName('g');
const crunch = frames.find(g => g.getAttribute('data-l').startsWith('Job.crunch'));
crunch.fire('mouseover'); console.log('details:', byId['details'].textContent);
crunch.fire('click'); console.log('zoomed width', crunch.getElementsByTagName('rect')[0].getAttribute('width'), 'unzoom class', byId['unzoom'].getAttribute('class'));
const hidden = frames.filter(g => g.getAttribute('class') === 'hide').length; console.log('hidden after zoom', hidden, 'of', frames.length);
byId['unzoom'].fire('click'); console.log('after reset width', crunch.getElementsByTagName('rect')[0].getAttribute('width'));
byId['search'].fire('click'); console.log('matched:', byId['matched'].textContent, 'fill', crunch.getElementsByTagName('rect')[0].getAttribute('fill'));
byId['search'].fire('click'); console.log('cleared:', JSON.stringify(byId['matched'].textContent), byId['search'].textContent);
console.log('label text', crunch.getElementsByTagName('text')[0].textContent);
