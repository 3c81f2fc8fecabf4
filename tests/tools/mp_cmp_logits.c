/* mp-cmp-logits: compares two raw little-endian float32 logit files.
 *
 *   mp-cmp-logits A B [--tol X] [--n-vocab N]
 *
 * Prints max|a-b|, max|b|, their ratio and the argmax of each (per position
 * when --n-vocab splits the files into rows; the ratio is then the worst
 * row's). Exit 0 if sizes match, nothing is NaN and ratio <= tol (default
 * 1e-4); exit 1 otherwise; exit 2 on usage or I/O errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *read_f32(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *buf = NULL;
    long bytes = -1;
    if (fseek(f, 0, SEEK_END) == 0) bytes = ftell(f);
    if (bytes < 0 || bytes % 4 || fseek(f, 0, SEEK_SET) != 0) goto fail;
    buf = malloc(bytes ? (size_t)bytes : 1);
    if (!buf || fread(buf, 1, (size_t)bytes, f) != (size_t)bytes) goto fail;
    fclose(f);
    *n = bytes / 4;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

static long argmax(const float *x, long n)
{
    long best = 0;
    for (long i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

int main(int argc, char **argv)
{
    const char *pa = NULL, *pb = NULL;
    double tol = 1e-4;
    long nv = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tol") && i + 1 < argc) tol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--n-vocab") && i + 1 < argc) nv = atol(argv[++i]);
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: mp-cmp-logits A.f32 B.f32 [--tol X] [--n-vocab N]\n");
            return 0;
        } else if (!pa) pa = argv[i];
        else if (!pb) pb = argv[i];
        else { fprintf(stderr, "error: unexpected argument '%s'\n", argv[i]); return 2; }
    }
    if (!pa || !pb) { fprintf(stderr, "usage: mp-cmp-logits A.f32 B.f32 [--tol X] [--n-vocab N]\n"); return 2; }
    long na = 0, nb = 0;
    float *a = read_f32(pa, &na), *b = read_f32(pb, &nb);
    if (!a || !b) {
        fprintf(stderr, "error: cannot read %s\n", a ? pb : pa);
        return 2;
    }
    if (na != nb || na == 0) {
        printf("size mismatch: %s has %ld floats, %s has %ld\n", pa, na, pb, nb);
        return 1;
    }
    if (nv <= 0 || na % nv) nv = na;
    const long rows = na / nv;
    double worst = 0, worst_diff = 0, worst_max = 0;
    long worst_row = 0, argmax_mismatch = 0;
    int nan = 0;
    for (long r = 0; r < rows; r++) {
        const float *ra = a + r * nv, *rb = b + r * nv;
        double md = 0, mb = 0;
        for (long i = 0; i < nv; i++) {
            if (isnan(ra[i]) || isnan(rb[i])) nan = 1;
            double d = fabs((double)ra[i] - rb[i]);
            if (d > md) md = d;
            if (fabs(rb[i]) > mb) mb = fabs(rb[i]);
        }
        double ratio = mb > 0 ? md / mb : (md > 0 ? INFINITY : 0);
        if (ratio > worst || r == 0) { worst = ratio; worst_diff = md; worst_max = mb; worst_row = r; }
        if (argmax(ra, nv) != argmax(rb, nv)) argmax_mismatch++;
    }
    const float *ra = a + worst_row * nv, *rb = b + worst_row * nv;
    printf("max|a-b| %.6g max|b| %.6g ratio %.3g argmax_a %ld argmax_b %ld", worst_diff, worst_max, worst,
           argmax(ra, nv), argmax(rb, nv));
    if (rows > 1) printf(" (worst of %ld rows: row %ld; argmax differs in %ld rows)", rows, worst_row, argmax_mismatch);
    printf("%s\n", nan ? " NaN!" : "");
    free(a);
    free(b);
    return (nan || worst > tol) ? 1 : 0;
}
