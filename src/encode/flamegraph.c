/* The flame graph: one self-contained interactive SVG (hover details, click
 * to zoom, search and highlight, reset) laid out here, no network needed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/log.h"
#include "encode_priv.h"

#define FG_WIDTH 1200.0
#define FG_PAD 10.0
#define FG_ROW 16.0
#define FG_TOP 60.0       /* title, subtitle, controls */
#define FG_BOTTOM 34.0    /* details line */
#define FG_MIN_PX 0.1     /* narrower frames are not drawn (file size) */
#define FG_CHAR_PX 7.0    /* average glyph width at 12px monospace-ish */

struct fg {
	const struct cg_profile *p;
	const struct encode_labels *l;
	uint64_t *total; /* inclusive samples per node */
	uint64_t *start; /* offset (in samples) of the node's left edge */
	uint32_t *depth;
	uint32_t max_depth;
};

/* Children sorted by label, like every flame graph since the first: the
 * same stacks always land in the same place. qsort_r: the reporter's
 * worker may encode while the session does. */
static int fg_cmp(const void *a, const void *b, void *arg)
{
	const struct fg *g = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return strcmp(encode_label(g->l, profile_node(g->p, x)->frame),
		      encode_label(g->l, profile_node(g->p, y)->frame));
}

static int fg_layout(struct fg *g)
{
	const struct cg_profile *p = g->p;
	uint32_t n = profile_node_count(p), maxkids = 0;
	uint32_t *kids = NULL;
	int r = 0;
	/* A child's index is always above its parent's (it is created after
	 * it), so one backward pass sums totals, one forward pass places. */
	for (uint32_t i = 0; i < n; i++) {
		g->total[i] = profile_node_total(p, i, true);
		g->depth[i] = i ? g->depth[profile_node(p, i)->parent] + 1 : 0;
		if (g->depth[i] > g->max_depth)
			g->max_depth = g->depth[i];
	}
	for (uint32_t i = n; i-- > 1;)
		g->total[profile_node(p, i)->parent] += g->total[i];
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = 0;
		for (uint32_t c = profile_node(p, i)->child; c != CG_PROFILE_NONE;
		     c = profile_node(p, c)->sibling)
			k++;
		if (k > maxkids)
			maxkids = k;
	}
	kids = malloc((maxkids ? maxkids : 1) * sizeof(*kids));
	if (!kids) {
		r = -ENOMEM;
		goto out;
	}
	g->start[0] = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = 0;
		for (uint32_t c = profile_node(p, i)->child; c != CG_PROFILE_NONE;
		     c = profile_node(p, c)->sibling)
			kids[k++] = c;
		qsort_r(kids, k, sizeof(*kids), fg_cmp, g);
		/* Self samples of i sit at its left edge, children after. */
		uint64_t x = g->start[i] + profile_node_total(p, i, true);
		for (uint32_t j = 0; j < k; j++) {
			g->start[kids[j]] = x;
			x += g->total[kids[j]];
		}
	}
out:
	free(kids);
	return r;
}

/* Warm colours by frame name (stable across runs), hue by kind so Python,
 * native and Java code tell apart at a glance. */
static void fg_color(const struct cg_profile_frame *f, char *buf, size_t n)
{
	uint64_t h = cg_hash_bytes(f->name, strlen(f->name), 7);
	unsigned a = h & 0xff, b = (h >> 8) & 0xff;
	switch (f->kind) {
	case CG_FK_NATIVE:
		snprintf(buf, n, "rgb(%u,%u,%u)", 200 + a % 55, 80 + b % 60, 80 + b % 40);
		break;
	case CG_FK_JAVA:
		snprintf(buf, n, "rgb(%u,%u,%u)", 80 + a % 60, 190 + b % 60, 80 + a % 50);
		break;
	case CG_FK_THREAD:
	case CG_FK_PROCESS:
	case CG_FK_TASK:
	case CG_FK_TRUNCATED:
		snprintf(buf, n, "rgb(%u,%u,%u)", 170 + a % 30, 170 + a % 30, 190 + a % 30);
		break;
	default:
		snprintf(buf, n, "rgb(%u,%u,%u)", 225 + a % 30, 110 + b % 120, 30 + a % 50);
		break;
	}
}

#define FG_SCRIPT \
	"<script type=\"text/ecmascript\"><![CDATA[\n" \
	"'use strict';\n" \
	"var W = 0, frames = [], details, zoomed = null, searchRe = null;\n" \
	"function num(g, k) { return +g.getAttribute('data-' + k); }\n" \
	"var ready = false;\n" \
	"function init() {\n" \
	"  if (ready) return;\n" \
	"  ready = true;\n" \
	"  details = document.getElementById('details');\n" \
	"  W = num(document.getElementById('cgprof'), 'w');\n" \
	"  var gs = document.getElementById('frames').getElementsByTagName('g');\n" \
	"  for (var i = 0; i < gs.length; i++) {\n" \
	"    var g = gs[i];\n" \
	"    frames.push({g: g, s: num(g, 's'), n: num(g, 'n'), d: num(g, 'd'),\n" \
	"      r: g.getElementsByTagName('rect')[0], t: g.getElementsByTagName('text')[0],\n" \
	"      label: g.getAttribute('data-l'),\n" \
	"      info: g.getElementsByTagName('title')[0].textContent});\n" \
	"    g.addEventListener('mouseover', hover(frames[i]));\n" \
	"    g.addEventListener('mouseout', function () { details.textContent = ' '; });\n" \
	"    g.addEventListener('click', zoomer(frames[i]));\n" \
	"  }\n" \
	"  document.getElementById('unzoom').addEventListener('click', reset);\n" \
	"  document.getElementById('search').addEventListener('click', function () {\n" \
	"    if (searchRe) clearSearch(); else askSearch();\n" \
	"  });\n" \
	"  document.addEventListener('keydown', function (e) {\n" \
	"    if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); askSearch(); }\n" \
	"    else if (e.key === 'Escape') { reset(); clearSearch(); }\n" \
	"  });\n" \
	"  for (var j = 0; j < frames.length; j++) fit(frames[j]);\n" \
	"}\n" \
	"function hover(f) { return function () { details.textContent = f.info; }; }\n" \
	"function fit(f) {\n" \
	"  var w = +f.r.getAttribute('width'), max = Math.floor((w - 6) / %g);\n" \
	"  f.t.setAttribute('x', +f.r.getAttribute('x') + 3);\n" \
	"  if (max < 3) { f.t.textContent = ''; return; }\n" \
	"  f.t.textContent = f.label.length <= max ? f.label : f.label.substring(0, max - 2) + '..';\n" \
	"}\n" \
	"function zoomer(f) { return function (e) { e.stopPropagation(); zoom(f); }; }\n" \
	"function zoom(z) {\n" \
	"  zoomed = z;\n" \
	"  document.getElementById('unzoom').setAttribute('class', '');\n" \
	"  for (var i = 0; i < frames.length; i++) {\n" \
	"    var f = frames[i], x, w;\n" \
	"    if (f.d >= z.d && f.s >= z.s && f.s + f.n <= z.s + z.n) {\n" \
	"      x = %g + (f.s - z.s) / z.n * (W - %g); w = f.n / z.n * (W - %g);\n" \
	"      f.g.setAttribute('class', '');\n" \
	"    } else if (f.d < z.d && f.s <= z.s && f.s + f.n >= z.s + z.n) {\n" \
	"      x = %g; w = W - %g; f.g.setAttribute('class', 'parent');\n" \
	"    } else { f.g.setAttribute('class', 'hide'); continue; }\n" \
	"    f.r.setAttribute('x', x); f.r.setAttribute('width', Math.max(w, 0));\n" \
	"    fit(f);\n" \
	"  }\n" \
	"}\n" \
	"function reset() {\n" \
	"  if (!frames.length) return;\n" \
	"  zoom({s: 0, n: num(document.getElementById('cgprof'), 'total') || 1, d: 0});\n" \
	"  zoomed = null;\n" \
	"  document.getElementById('unzoom').setAttribute('class', 'hide');\n" \
	"}\n" \
	"function askSearch() {\n" \
	"  var term = prompt('Search frames (regular expression):', searchRe ? searchRe.source : '');\n" \
	"  if (term === null) return;\n" \
	"  if (term === '') { clearSearch(); return; }\n" \
	"  try { searchRe = new RegExp(term); } catch (err) { alert('Bad expression: ' + err.message); return; }\n" \
	"  var spans = [];\n" \
	"  for (var i = 0; i < frames.length; i++) {\n" \
	"    var f = frames[i], hit = searchRe.test(f.label);\n" \
	"    f.r.setAttribute('fill', hit ? 'rgb(230,0,230)' : f.r.getAttribute('data-fill'));\n" \
	"    if (hit) spans.push([f.s, f.s + f.n]);\n" \
	"  }\n" \
	"  spans.sort(function (a, b) { return a[0] - b[0]; });\n" \
	"  var covered = 0, end = -1;\n" \
	"  for (var k = 0; k < spans.length; k++) {\n" \
	"    if (spans[k][0] >= end) { covered += spans[k][1] - spans[k][0]; end = spans[k][1]; }\n" \
	"    else if (spans[k][1] > end) { covered += spans[k][1] - end; end = spans[k][1]; }\n" \
	"  }\n" \
	"  var total = num(document.getElementById('cgprof'), 'total') || 1;\n" \
	"  document.getElementById('matched').textContent =\n" \
	"    'Matched: ' + (100 * covered / total).toFixed(1) + '%%';\n" \
	"  document.getElementById('search').textContent = 'Clear search';\n" \
	"}\n" \
	"function clearSearch() {\n" \
	"  searchRe = null;\n" \
	"  for (var i = 0; i < frames.length; i++) frames[i].r.setAttribute('fill', frames[i].r.getAttribute('data-fill'));\n" \
	"  document.getElementById('matched').textContent = ' ';\n" \
	"  document.getElementById('search').textContent = 'Search';\n" \
	"}\n" \
	"/* A standalone SVG and one inlined in HTML (saved as .html) both\n" \
	"   fire window's load; the svg onload attribute is not fired inline. */\n" \
	"if (typeof window !== 'undefined' && window.addEventListener)\n" \
	"  window.addEventListener('load', init);\n" \
	"]]></script>\n"

static void fg_text(FILE *out, double x, double y, const char *attrs, const char *id, const char *s)
{
	fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" %s", x, y, attrs);
	if (id)
		fprintf(out, " id=\"%s\"", id);
	fputc('>', out);
	encode_xml_str(out, s);
	fputs("</text>\n", out);
}

static void fg_heap(FILE *out, const struct cg_profile_heap *h, double y)
{
	char line[512];
	fg_text(out, FG_PAD, y, "class=\"heap\"", NULL, "JVM heap summary (largest classes):");
	for (size_t i = 0; i < h->n && i < 10; i++) {
		snprintf(line, sizeof(line), "%14llu bytes %12llu instances  %s",
			 (unsigned long long)h->classes[i].bytes,
			 (unsigned long long)h->classes[i].instances, h->classes[i].name);
		fg_text(out, FG_PAD, y + 14.0 * (double)(i + 1), "class=\"heap\"", NULL, line);
	}
	snprintf(line, sizeof(line), "%14llu bytes %12llu instances  (all classes)",
		 (unsigned long long)h->total_bytes, (unsigned long long)h->total_instances);
	fg_text(out, FG_PAD, y + 14.0 * (double)((h->n < 10 ? h->n : 10) + 1), "class=\"heap\"",
		NULL, line);
}

/* The document's head: size, style, script, background, titles and the
 * text slots the script fills (zoom, search, details). */
static void fg_header(FILE *out, const struct cg_profile *p, const struct cg_encode_opts *o,
		      double height, double base, uint64_t total)
{
	char sub[512];
	fprintf(out,
		"<?xml version=\"1.0\" standalone=\"no\"?>\n"
		"<svg version=\"1.1\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
		"xmlns=\"http://www.w3.org/2000/svg\" data-w=\"%.0f\" data-total=\"%llu\" "
		"id=\"cgprof\">\n",
		FG_WIDTH, height, FG_WIDTH, height, FG_WIDTH, (unsigned long long)total);
	fputs("<style type=\"text/css\">\n"
	      "text { font-family: Verdana, sans-serif; font-size: 12px; fill: rgb(0,0,0); }\n"
	      "#title { font-size: 17px; text-anchor: middle; }\n"
	      "#frames text { font-size: 11px; pointer-events: none; }\n"
	      "#frames g { cursor: pointer; }\n"
	      "#frames g:hover rect { stroke: black; stroke-width: 0.5; }\n"
	      "#unzoom, #search { cursor: pointer; }\n"
	      ".hide { display: none; }\n"
	      ".parent { opacity: 0.5; }\n"
	      ".heap { font-family: monospace; font-size: 11px; white-space: pre; }\n"
	      "</style>\n",
	      out);
	fprintf(out, FG_SCRIPT, FG_CHAR_PX, FG_PAD, 2 * FG_PAD, 2 * FG_PAD, FG_PAD, 2 * FG_PAD);
	fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"rgb(248,248,240)\"/>\n",
		FG_WIDTH, height);
	fg_text(out, FG_WIDTH / 2, 24, "", "title", o->title ? o->title : "cgprof flame graph");
	uint64_t lost = 0;
	for (int i = 0; i < CG_LOST__COUNT; i++)
		lost += profile_lost(p, (enum cg_lost)i);
	snprintf(sub, sizeof(sub), "%llu samples, %llu lost, %llu threads%s%s",
		 (unsigned long long)profile_samples(p), (unsigned long long)lost,
		 (unsigned long long)profile_thread_count(p),
		 profile_runtime_version(p) ? ", " : "",
		 profile_runtime_version(p) ? profile_runtime_version(p) : "");
	fg_text(out, FG_WIDTH / 2, 42, "style=\"text-anchor:middle\"", "subtitle", sub);
	fg_text(out, FG_PAD, 24, "class=\"hide\"", "unzoom", "Reset Zoom");
	fg_text(out, FG_WIDTH - FG_PAD - 100, 24, "", "search", "Search");
	fg_text(out, FG_WIDTH - FG_PAD - 100, base + 24, "", "matched", " ");
	fg_text(out, FG_PAD, base + 24, "", "details", " ");
}

/* Node i as one box: its data for the script, a tooltip, the rectangle
 * and the label cut to fit. Boxes too thin to see are left out. */
static void fg_box(FILE *out, const struct fg *g, uint32_t i, uint64_t total, double base)
{
	const struct cg_profile *p = g->p;
	char info[4096], fill[32];
	double span = FG_WIDTH - 2 * FG_PAD;
	double w = (double)g->total[i] / (double)total * span;
	if (w < FG_MIN_PX || !g->total[i])
		return;
	const struct cg_profile_frame *f = profile_frame(p, profile_node(p, i)->frame);
	const char *label = encode_label(g->l, profile_node(p, i)->frame);
	double x = FG_PAD + (double)g->start[i] / (double)total * span;
	double y = base - FG_ROW * (double)g->depth[i];
	uint64_t self = profile_node_total(p, i, true);
	snprintf(info, sizeof(info), "%s (%llu samples, %.2f%%; self %llu)", label,
		 (unsigned long long)g->total[i], 100.0 * (double)g->total[i] / (double)total,
		 (unsigned long long)self);
	fg_color(f, fill, sizeof(fill));
	fprintf(out, "<g data-s=\"%llu\" data-n=\"%llu\" data-d=\"%u\" data-l=\"",
		(unsigned long long)g->start[i], (unsigned long long)g->total[i], g->depth[i]);
	encode_xml_str(out, label);
	fputs("\"><title>", out);
	encode_xml_str(out, info);
	fprintf(out,
		"</title><rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" "
		"fill=\"%s\" data-fill=\"%s\" rx=\"2\" ry=\"2\"/>"
		"<text x=\"%.2f\" y=\"%.1f\">",
		x, y, w, FG_ROW - 1, fill, fill, x + 3, y + 11.5);
	/* The label as it fits, so the graph reads without script too. */
	size_t max = w > 6 ? (size_t)((w - 6) / FG_CHAR_PX) : 0, len = strlen(label);
	if (max >= 3 && len <= max) {
		encode_xml_str(out, label);
	} else if (max >= 3) {
		snprintf(info, sizeof(info), "%.*s..", (int)(max - 2), label);
		encode_xml_str(out, info);
	}
	fputs("</text></g>\n", out);
}

int encode_flamegraph(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out)
{
	struct encode_labels l = {0};
	struct fg g = {.p = p, .l = &l};
	uint32_t n = profile_node_count(p);
	const struct cg_profile_heap *heap = profile_heap(p);
	int r = encode_labels_build(p, &l, false);
	if (r)
		return r;
	g.total = calloc(n, sizeof(*g.total));
	g.start = calloc(n, sizeof(*g.start));
	g.depth = calloc(n, sizeof(*g.depth));
	if (!g.total || !g.start || !g.depth || (r = fg_layout(&g))) {
		r = cg_fail(-ENOMEM, "out of memory laying out the flame graph");
		goto out;
	}
	uint64_t total = g.total[0];
	double heap_h = heap ? 14.0 * (double)((heap->n < 10 ? heap->n : 10) + 3) : 0;
	double height = FG_TOP + FG_ROW * (double)(g.max_depth ? g.max_depth : 1) + FG_BOTTOM + heap_h;
	double base = FG_TOP + FG_ROW * (double)(g.max_depth ? g.max_depth : 1); /* y below row 1 */

	fg_header(out, p, o, height, base, total);
	fputs("<g id=\"frames\">\n", out);
	for (uint32_t i = 1; i < n && total; i++)
		fg_box(out, &g, i, total, base);
	fputs("</g>\n", out);
	if (heap)
		fg_heap(out, heap, base + FG_BOTTOM + 14);
	fputs("</svg>\n", out);
	r = encode_check_stream(out, "flame graph");
out:
	free(g.total);
	free(g.start);
	free(g.depth);
	encode_labels_free(&l);
	return r;
}
