/* moepager bench --plot: a self-contained SVG (no dependency) with two
 * panels sharing a log2 cache-size axis: generation tok/s on top, decode
 * hit rate below; one polyline per prefetch setting (and per policy / I/O
 * depth when the sweep varies them), the all-in-RAM ceiling as a dashed
 * line, and a ring at each line's knee (rule in bench_internal.h). */
#include "bench_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 900
#define H 660
#define ML 80   /* left margin */
#define MR 260  /* right margin: legend */
#define MT 60
#define PH1 260 /* top panel height */
#define GAP 70
#define PH2 180 /* bottom panel height */

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f);
        }
    }
}

typedef struct pt {
    double x, tps, hit; /* x = cache bytes */
} pt;

static int pt_cmp(const void *a, const void *b)
{
    double x = ((const pt *)a)->x, y = ((const pt *)b)->x;
    return (x > y) - (x < y);
}

/* A nice step for an axis from 0 to max with about n ticks. */
static double nice_step(double max, int n)
{
    double raw = max / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

int bench_svg_write(const char *path, const char *model, const bench_row *rows, int n, int n_gen)
{
    int rc = -1, n_series = 0;
    char (*labels)[96] = calloc((size_t)n + 1, sizeof *labels);
    int *series = calloc((size_t)n + 1, sizeof *series);
    pt *pts = calloc((size_t)n + 1, sizeof *pts);
    FILE *f = NULL;
    if (!labels || !series || !pts) {
        cli_error("out of memory");
        goto done;
    }
    /* which dimensions vary among the streamed rows */
    const char *pol0 = NULL;
    int depth0 = -1;
    bool multi_pol = false, multi_depth = false;
    double ram_tps = NAN, xmin = INFINITY, xmax = -INFINITY, ymax = 0;
    for (int i = 0; i < n; i++) {
        bench_metrics m;
        bench_metrics_get(&rows[i], n_gen, &m);
        double t = n_gen > 0 ? m.tg_tps : m.pp_tps;
        if (!rows[i].streamed) {
            if (isfinite(t) && !(ram_tps >= t)) ram_tps = t;
            continue;
        }
        if (pol0 && strcmp(pol0, rows[i].policy_name)) multi_pol = true;
        if (depth0 >= 0 && depth0 != rows[i].set.io_depth) multi_depth = true;
        pol0 = rows[i].policy_name;
        depth0 = rows[i].set.io_depth;
        if (rows[i].cache_bytes < xmin) xmin = (double)rows[i].cache_bytes;
        if (rows[i].cache_bytes > xmax) xmax = (double)rows[i].cache_bytes;
        if (isfinite(t) && t > ymax) ymax = t;
    }
    if (!pol0) {
        cli_error("bench: --plot needs rows with an expert cache (give --cache-size, --cache-experts or --mem)");
        goto done;
    }
    if (isfinite(ram_tps) && ram_tps > ymax) ymax = ram_tps;
    if (!(ymax > 0)) ymax = 1;
    double ystep = nice_step(ymax * 1.05, 5), ytop = ceil(ymax * 1.05 / ystep) * ystep;
    for (int i = 0; i < n; i++) {
        if (!rows[i].streamed) continue;
        char lab[96];
        bench_series_label(&rows[i], multi_pol, multi_depth, lab, sizeof lab);
        int s = 0;
        while (s < n_series && strcmp(labels[s], lab)) s++;
        if (s == n_series) snprintf(labels[n_series++], sizeof labels[0], "%s", lab);
        series[i] = s;
    }
    double lx0 = log2(xmin), lx1 = log2(xmax);
    if (lx1 - lx0 < 1e-9) lx0 -= 0.5, lx1 += 0.5;
    double pad = (lx1 - lx0) * 0.05;
    lx0 -= pad, lx1 += pad;
    const double PW = W - ML - MR, y1 = MT, y2 = MT + PH1 + GAP;
#define XP(bytes) (ML + (log2(bytes) - lx0) / (lx1 - lx0) * PW)
#define YT(v) (y1 + PH1 - (v) / ytop * PH1)
#define YB(v) (y2 + PH2 - (v) / 100.0 * PH2)

    if (!(f = fopen(path, "w"))) {
        cli_error("bench: --plot: cannot write %s", path);
        goto done;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
               W, H, W, H);
    const char *base = strrchr(model, '/');
    fprintf(f, "<text x=\"%d\" y=\"28\" font-size=\"16\" font-weight=\"bold\">moepager bench: ", ML);
    xml_text(f, base ? base + 1 : model);
    fprintf(f, "</text>\n");

    /* panels: frames, grids, tick labels */
    const char *ylab1 = n_gen > 0 ? "generation tok/s" : "prompt tok/s";
    for (double v = 0; v <= ytop + ystep * 0.01; v += ystep)
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                ML, YT(v), ML + PW, YT(v), ML - 6, YT(v) + 4, v);
    for (int v = 0; v <= 100; v += 25)
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n",
                ML, YB(v), ML + PW, YB(v), ML - 6, YB(v) + 4, v);
    fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", ML, y1, PW,
            PH1);
    fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", ML, y2, PW,
            PH2);
    fprintf(f, "<text transform=\"translate(24 %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", y1 + PH1 / 2.0,
            ylab1);
    fprintf(f, "<text transform=\"translate(24 %.1f) rotate(-90)\" text-anchor=\"middle\">decode hit rate (%%)</text>\n",
            y2 + PH2 / 2.0);
    /* x ticks at every distinct cache size, on both panels */
    double done_x[BENCH_MAX_LIST * 4];
    int n_done = 0;
    for (int i = 0; i < n; i++) {
        if (!rows[i].streamed) continue;
        double x = (double)rows[i].cache_bytes;
        bool seen = false;
        for (int k = 0; k < n_done; k++) seen |= done_x[k] == x;
        if (seen || n_done >= (int)(sizeof done_x / sizeof done_x[0])) continue;
        done_x[n_done++] = x;
        char sz[32];
        mp_format_size(rows[i].cache_bytes, sz, sizeof sz);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", XP(x), y1, XP(x), y1 + PH1);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", XP(x), y2, XP(x), y2 + PH2);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", XP(x), y2 + PH2 + 16, sz);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">expert cache size (log scale)</text>\n",
            ML + PW / 2, y2 + PH2 + 38.0);
    if (isfinite(ram_tps))
        fprintf(f,
                "<line class=\"ram\" x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
                "stroke-dasharray=\"6 4\"/>\n",
                ML, YT(ram_tps), ML + PW, YT(ram_tps));

    /* one polyline per series in each panel, points, the knee */
    for (int s = 0; s < n_series; s++) {
        int np = 0;
        for (int i = 0; i < n; i++) {
            if (!rows[i].streamed || series[i] != s) continue;
            bench_metrics m;
            bench_metrics_get(&rows[i], n_gen, &m);
            pts[np++] = (pt){(double)rows[i].cache_bytes, n_gen > 0 ? m.tg_tps : m.pp_tps, m.hit_rate * 100};
        }
        qsort(pts, (size_t)np, sizeof *pts, pt_cmp);
        const char *col = colors[s % 10];
        for (int panel = 0; panel < 2; panel++) {
            fprintf(f, "<polyline class=\"series\" data-series=\"");
            xml_text(f, labels[s]);
            fprintf(f, "\" data-panel=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                    panel ? "hit_rate" : "tps", col);
            for (int k = 0; k < np; k++) {
                double v = panel ? pts[k].hit : pts[k].tps;
                if (!isfinite(v)) continue;
                fprintf(f, "%s%.1f,%.1f", k ? " " : "", XP(pts[k].x), panel ? YB(v) : YT(v));
            }
            fprintf(f, "\"/>\n");
            for (int k = 0; k < np; k++) {
                double v = panel ? pts[k].hit : pts[k].tps;
                if (isfinite(v))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", XP(pts[k].x),
                            panel ? YB(v) : YT(v), col);
            }
        }
        double xs[BENCH_MAX_LIST * 4], ys[BENCH_MAX_LIST * 4];
        int nk = np < (int)(sizeof xs / sizeof xs[0]) ? np : (int)(sizeof xs / sizeof xs[0]);
        for (int k = 0; k < nk; k++) xs[k] = pts[k].x, ys[k] = pts[k].tps;
        int knee = bench_knee(xs, ys, nk);
        /* a knee at the largest size of a line that still gains there is
         * only a lower bound: drawn dashed */
        bool open_end = knee == nk - 1 && nk > 1;
        if (knee >= 0 && isfinite(ys[knee]))
            fprintf(f,
                    "<circle class=\"knee\" cx=\"%.1f\" cy=\"%.1f\" r=\"9\" fill=\"none\" stroke=\"%s\" "
                    "stroke-width=\"2.5\"%s/>\n",
                    XP(xs[knee]), YT(ys[knee]), col, open_end ? " stroke-dasharray=\"4 3\"" : "");
    }

    /* legend */
    double lx = W - MR + 20, ly = MT + 10;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">prefetch</text>\n", lx, ly);
    for (int s = 0; s < n_series; s++) {
        ly += 20;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>", lx,
                ly - 4, lx + 24, ly - 4, colors[s % 10]);
        fprintf(f, "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">", lx + 30, ly);
        xml_text(f, labels[s]);
        fprintf(f, "</text>\n");
    }
    if (isfinite(ram_tps)) {
        ly += 20;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-dasharray=\"6 4\"/>"
                "<text x=\"%.1f\" y=\"%.1f\">all in RAM (%.1f tok/s)</text>\n",
                lx, ly - 4, lx + 24, ly - 4, lx + 30, ly, ram_tps);
    }
    ly += 26;
    fprintf(f,
            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"#333\" stroke-width=\"2\"/>"
            "<text x=\"%.1f\" y=\"%.1f\">knee: the smallest cache</text>\n"
            "<text x=\"%.1f\" y=\"%.1f\">after which each doubling</text>\n"
            "<text x=\"%.1f\" y=\"%.1f\">adds less than %.0f%% tok/s</text>\n",
            lx + 12, ly - 4, lx + 30, ly, lx + 30, ly + 15, lx + 30, ly + 30, BENCH_KNEE_GAIN * 100);
    fprintf(f,
            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"#333\" stroke-width=\"2\" "
            "stroke-dasharray=\"4 3\"/>"
            "<text x=\"%.1f\" y=\"%.1f\">dashed: still gaining at</text>\n"
            "<text x=\"%.1f\" y=\"%.1f\">the largest size swept</text>\n",
            lx + 12, ly + 50, lx + 30, ly + 54, lx + 30, ly + 69);
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) {
        f = NULL;
        cli_error("bench: --plot: cannot write %s", path);
        goto done;
    }
    f = NULL;
    rc = 0;
#undef XP
#undef YT
#undef YB
done:
    if (f) fclose(f);
    free(labels);
    free(series);
    free(pts);
    return rc;
}
