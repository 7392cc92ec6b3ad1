/*
 * pacbound._kl_inverse_kernel: the interior of kl_inv_upper / kl_inv_lower, fused and vectorised.
 *
 * This is the algorithm of pacbound/_kl_inverse.py (start, one Householder step of order 3,
 * one Halley step, the conservative tangent step) in the same order of operations, except that
 * the iteration (not the conservative step) multiplies by one reciprocal where numpy divides
 * twice or thrice by the same number. What the numpy path does in ~110 memory passes over
 * blocks of 16384 elements, this does in ten stage loops over blocks of 256 that stay in L1;
 * each loop body is branch-free and the compiler vectorises it (AVX2 + FMA where the CPU has
 * it, chosen at load time; SSE2 otherwise). Stages rather than one loop: the whole algorithm
 * is one long dependency chain per element, and a short loop body lets the CPU overlap
 * several iterations (measured: one loop ~1.5x slower). Results differ from the numpy path by
 * a few ulp (its logs); both are rigorous.
 *
 * log, log1p and exp are our own branch-free versions of the fdlibm algorithms (Sun
 * Microsystems, 1993; the constants are fdlibm's), restricted to the arguments that occur here:
 *   kernel_log:   positive, normal, finite x; error < 1 ulp (fdlibm e_log.c);
 *   kernel_log1p: z > -1 with 1 + z normal; error < 1 ulp (fdlibm s_log1p.c);
 *   kernel_exp:   |x| <= 708; error < 1 ulp (fdlibm e_exp.c); used only by the iteration,
 *                 whose accuracy the conservative step does not rely on.
 * The tests measure each against 40-digit mpmath (< 1 ulp), well within the 4-ulp allowance
 * that the conservative step's rounding-error bound E assumes. Floating-point contraction is
 * off (see setup.py), so every product and sum rounds once, as in numpy.
 *
 * Interface (Python): interior(q, c, out, lower[, baseline]) -> int, with q, c, out
 * contiguous float64 buffers of one length. It computes out block by block (256 pairs) after
 * checking that every pair of the block lies in the interior domain, Q_MIN <= q < 1 - 2^-53
 * (Q_MIN_UPPER = 2^-1022 for the sup, Q_MIN_LOWER = 1e-280 for the inf) and
 * 0 < c < C_MAX = 1e3, where the algorithm needs no special case. It returns how many leading
 * pairs it wrote: all of them, or up to the first block that holds an edge or NaN, from which
 * on the caller takes its masked path. Releases the GIL while it runs.
 * baseline=True runs the SSE2 loops even where the AVX2 ones were chosen (for the tests: the
 * two must agree to the bit, since no operation is contracted or reordered between them).
 * elementary(x, out, which) applies the kernel's own log (0), log1p (1) or exp (2), for tests.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(KERNEL_NO_DISPATCH)
/* A second copy of the loops for AVX2 + FMA, chosen at load time (select_kernels). */
#define KERNEL_X86_DISPATCH 1
#endif
#if defined(__GNUC__)
/* Everything the loops call is inlined into each copy of them (so the AVX2 copy is AVX2). */
#define KERNEL_INLINE static inline __attribute__((always_inline))
/* Kept out of line: inlined into the binding, the loops lose their restrict pointers. */
#define KERNEL_NOINLINE __attribute__((noinline))
#else
#define KERNEL_INLINE static inline
#define KERNEL_NOINLINE
#endif

/* The constants of pacbound/_kl_inverse.py (same names without the underscore). */
static const double TINY = 2.2250738585072014e-308;   /* smallest normal double */
static const double U = 0x1p-53;                       /* unit roundoff */
static const double ONE_BELOW = 1.0 - 0x1p-53;         /* largest double below 1 */
static const double FLOOR = 1e-300;
static const double ERR = 0x1p-48;
static const double RESIDUAL_NOISE = 0x1p-49;
static const double STEP_SLACK = 0x1p-49;
static const double UP = 1.0 + 0x1p-51;
static const double DOWN = 1.0 - 0x1p-51;
/* The interior domain (pacbound._kl_inverse checks that these equal its own constants). */
static const double Q_MIN_UPPER = 2.2250738585072014e-308; /* TINY */
static const double Q_MIN_LOWER = 1e-280;                  /* _LOWER_Q_MIN */
static const double C_MAX = 1e3;                           /* _C_HUGE, excluded */

KERNEL_INLINE double from_bits(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

KERNEL_INLINE uint64_t to_bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

KERNEL_INLINE double dmax(double a, double b) { return a > b ? a : b; }
KERNEL_INLINE double dmin(double a, double b) { return a < b ? a : b; }
KERNEL_INLINE double dabs(double a) { return from_bits(to_bits(a) & 0x7fffffffffffffffULL); }

/* The constants of fdlibm's e_log.c / s_log1p.c. */
static const double LN2_HI = 6.93147180369123816490e-01; /* 3fe62e42 fee00000 */
static const double LN2_LO = 1.90821492927058770002e-10; /* 3dea39ef 35793c76 */
static const double LG1 = 6.666666666666735130e-01;      /* 3FE55555 55555593 */
static const double LG2 = 3.999999999940941908e-01;      /* 3FD99999 9997FA04 */
static const double LG3 = 2.857142874366239149e-01;      /* 3FD24924 94229359 */
static const double LG4 = 2.222219843214978396e-01;      /* 3FCC71C5 1D8E78AF */
static const double LG5 = 1.818357216161805012e-01;      /* 3FC74664 96CB03DE */
static const double LG6 = 1.531383769920937332e-01;      /* 3FC39A09 D078C69F */
static const double LG7 = 1.479819860511658591e-01;      /* 3FC2F112 DF3E5244 */

/*
 * Split x (positive, normal, finite) as x = 2^k m with sqrt(2)/2 <= m < sqrt(2). Returns m;
 * k is returned both as a double (by the 2^52 trick, exact) and as 2^-k.
 */
KERNEL_INLINE double split_exponent(double x, double *k, double *two_to_minus_k) {
    uint64_t ix = to_bits(x) + (0x3ff0000000000000ULL - 0x3fe6a09e00000000ULL);
    uint64_t biased = ix >> 52; /* k + 1023 */
    *k = from_bits(0x4330000000000000ULL | biased) - (0x1p52 + 1023.0);
    *two_to_minus_k = from_bits((2046ULL - biased) << 52);
    return from_bits((ix & 0x000fffffffffffffULL) + 0x3fe6a09e00000000ULL);
}

/*
 * k ln2 + log(1 + f) + c / (2^k (1 + f)) for sqrt(2)/2 - 1 <= f < sqrt(2) - 1, where
 * ``c_scaled`` = c 2^-k is a correction of at most a few ulp of 2^k (1 + f).
 * fdlibm: s = f / (2 + f), log(1 + f) = f - (hfsq - s (hfsq + R(s^2))) with hfsq = f^2 / 2 and
 * R a degree-7 polynomial in s^2 (error < 2^-58.45), summed as
 * k ln2_hi + (f - (hfsq - (s (hfsq + R) + (k ln2_lo + c / u)))). The correction needs only a
 * few correct bits (it is below 2^-52 |result| whenever k != 0, and 0 when k = 0), so
 * 1 / (1 + f) = (1 - s) / (1 + s) is taken as (1 - s)^2 (1 + s^2), relative error < s^6 < 3e-5:
 * no second division.
 */
KERNEL_INLINE double log_reduced(double f, double k, double c_scaled) {
    double hfsq = 0.5 * f * f;
    double s = f / (2.0 + f);
    double z = s * s;
    double w = z * z;
    double t1 = w * (LG2 + w * (LG4 + w * LG6));
    double t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    double R = t2 + t1;
    double one_minus_s = 1.0 - s;
    double correction = c_scaled * (one_minus_s * one_minus_s * (1.0 + z));
    return k * LN2_HI - ((hfsq - (s * (hfsq + R) + (k * LN2_LO + correction))) - f);
}

/* log(x) for positive normal finite x: fdlibm e_log.c without its special cases, < 1 ulp. */
KERNEL_INLINE double kernel_log(double x) {
    double k, two_to_minus_k;
    double m = split_exponent(x, &k, &two_to_minus_k);
    return log_reduced(m - 1.0, k, 0.0);
}

/*
 * log(1 + z) for z > -1 with 1 + z normal: fdlibm s_log1p.c without its special cases.
 * u = fl(1 + z) = 2^k m; where k = 0 the reduced argument is z itself (exact); elsewhere it is
 * m - 1 and the rounding of u, c = z - (u - 1), enters as the correction c / u (Goldberg).
 */
KERNEL_INLINE double kernel_log1p(double z) {
    double u = 1.0 + z;
    double k, two_to_minus_k;
    double m = split_exponent(u, &k, &two_to_minus_k);
    double c = z - (u - 1.0);
    int unscaled = k == 0.0;
    double f = unscaled ? z : m - 1.0;
    double c_scaled = unscaled ? 0.0 : c * two_to_minus_k;
    return log_reduced(f, k, c_scaled);
}

/*
 * exp(x) for |x| <= 708 (fdlibm e_exp.c without its special cases).
 * x = k ln2 + r with k = round(x / ln2), r = hi - lo in extra precision,
 * exp(r) = 1 + (r c / (2 - c) - lo + hi) with c = r - r^2 P(r^2), then times 2^k,
 * where 2^k (-1021 <= k <= 1022) is built from its bits.
 */
KERNEL_INLINE double kernel_exp(double x) {
    static const double ln2hi = 6.93147180369123816490e-01;  /* 3fe62e42 fee00000 */
    static const double ln2lo = 1.90821492927058770002e-10;  /* 3dea39ef 35793c76 */
    static const double invln2 = 1.44269504088896338700e+00; /* 3ff71547 652b82fe */
    static const double P1 = 1.66666666666666019037e-01;     /* 3FC55555 5555553E */
    static const double P2 = -2.77777777770155933842e-03;    /* BF66C16C 16BEBD93 */
    static const double P3 = 6.61375632143793436117e-05;     /* 3F11566A AF25DE2C */
    static const double P4 = -1.65339022054652515390e-06;    /* BEBBBD41 C5D26BF1 */
    static const double P5 = 4.13813679705723846039e-08;     /* 3E663769 72BEA4D0 */
    static const double shifter = 0x1.8p52;
    double kd = invln2 * x + shifter;            /* round to nearest: k in the low bits */
    uint64_t kbits = to_bits(kd) - to_bits(shifter); /* k as a two's-complement integer */
    kd -= shifter;
    double hi = x - kd * ln2hi;                  /* exact: kd * ln2hi has trailing zeros */
    double lo = kd * ln2lo;
    double r = hi - lo;
    double rr = r * r;
    double c = r - rr * (P1 + rr * (P2 + rr * (P3 + rr * (P4 + rr * P5))));
    double y = 1.0 + ((r * c) / (2.0 - c) - lo + hi);
    return y * from_bits((kbits + 1023ULL) << 52);
}

/*
 * One Halley (order 2) or Householder (order 3) step on F(s) = kl(a||x(s)) - c in the log-odds
 * displacement s (as _newton_type_step), in two halves. newton_type_displacement gives the
 * step from the residual, with F' = d = x - a, F'' = x (1 - x) and F''' = x (1 - x)(1 - 2x):
 * the Newton step F / F' times a correction factor kept within [1/4, 2], and no step where
 * |F| is below its own rounding error. apply_displacement moves x, 1 - x and d by it.
 */
KERNEL_INLINE double newton_residual(double a, double ac, double c, double xc, double *d_io) {
    double d = dmax(*d_io, TINY);
    *d_io = d;
    double r = kernel_log1p(d / xc) * ac;
    double tt = kernel_log1p(d / a) * a;
    double noise = (r + tt) * RESIDUAL_NOISE;
    r -= tt;
    r -= c;
    return dabs(r) > noise ? r : 0.0;
}

KERNEL_INLINE double newton_type_displacement(double residual, double x, double xc, double d,
                                              int order) {
    double inv_d = 1.0 / d; /* one division for F / F' and F'' / F' */
    double r = residual * inv_d;
    double h = x * xc;
    double ab = h * inv_d;
    ab *= r;
    if (order == 3) {
        double u3 = xc - x;
        u3 *= ab;
        u3 *= r;
        u3 *= 1.0 / 6.0;
        u3 -= ab;
        u3 += 1.0;
        ab *= -0.5;
        ab += 1.0;
        ab /= u3;
    } else {
        ab *= -0.5;
        ab += 1.0;
        ab = 1.0 / ab;
    }
    ab = dmin(dmax(ab, 0.25), 2.0);
    r *= ab;
    r = -r;
    return dmin(dmax(r, -700.0), 700.0);
}

/* x(s) = x e^s / (1 - x + x e^s), with 1 - x and d = x - a carried to full relative precision. */
KERNEL_INLINE void apply_displacement(double s, double *x_io, double *xc_io, double *d_io) {
    double x = *x_io, xc = *xc_io;
    double h = x * xc;
    double taylor = s * (1.0 / 6.0); /* e^s - 1 for |s| < 1e-5 (relative error < 1e-16) */
    taylor += 0.5;
    taylor *= s;
    taylor += 1.0;
    taylor *= s;
    int tiny_step = dabs(s) < 1e-5;
    double ex = kernel_exp(s);
    double em1 = tiny_step ? taylor : ex - 1.0;
    double den = x * ex;
    den += xc;
    double inv_den = 1.0 / den; /* one division for the three quotients below */
    x *= ex;
    x *= inv_den;
    em1 *= h;
    em1 *= inv_den;
    *d_io += em1;
    xc *= inv_den;
    *x_io = x;
    *xc_io = dmax(xc, FLOOR);
}

/*
 * The start (as _start), in two halves. a-world: a = q, x = p for the sup; a = 1 - q,
 * x = 1 - p for the inf. start_exponent writes a, 1 - a and w = (c - a ln a) / (1 - a);
 * start_point writes x, 1 - x and d = x - a, the smaller of the two closed-form upper bounds
 * on the root.
 */
KERNEL_INLINE void start_exponent(double q, double c, int lower, double *a_out, double *ac_out,
                                  double *w_out) {
    double a, ac, log_a;
    if (lower) {
        a = 1.0 - q;
        ac = q;
        log_a = kernel_log1p(-q);
    } else {
        a = q;
        ac = 1.0 - q;
        log_a = kernel_log(q);
    }
    double w = log_a * a;
    *w_out = (c - w) / ac;
    *a_out = a;
    *ac_out = ac;
}

KERNEL_INLINE void start_point(double a, double ac, double c, double w, double *x_out,
                               double *xc_out, double *d_out) {
    double cac = c * ac;
    double d1 = a + a;
    d1 += cac;
    d1 = __builtin_sqrt(d1);
    d1 *= __builtin_sqrt(c);
    d1 *= __builtin_sqrt(ac); /* sqrt(cac (cac + 2a)) as a product of roots: no underflow */
    d1 += cac;
    double e = kernel_exp(dmax(-w, -708.0));
    double xc = ac * e;
    e = 1.0 - e;
    double t = w * w;
    t *= -0.5;
    t += w;
    e = dmin(dmax(e, t), w);
    e *= ac;
    double d = dmin(d1, e);
    xc = dmax(xc, ac - d1);
    *x_out = a + d;
    *xc_out = dmax(xc, FLOOR);
    *d_out = d;
}

/*
 * The conservative step (as _conservative_step), in two halves. The candidate p is clipped
 * into its range; conservative_residual returns E - r, the residual's rounding-error bound
 * minus the computed residual r = kl(a||x) - c, and writes p; conservative_finish takes the
 * tangent step x + (E - r) / g, g = (x - a) / (x (1 - x)), widened by its own rounding and
 * rounded outward.
 */
KERNEL_INLINE void candidate(double a, double ac, double p, int lower, double *x_f,
                             double *xc_f, double *d, double *bound) {
    if (lower) {
        *bound = ac * ONE_BELOW;
        *xc_f = p;
        *x_f = 1.0 - p;
        *d = ac - p;
    } else {
        double lo = a * (1.5 * U);
        *bound = lo + a;
        *x_f = p;
        *xc_f = 1.0 - p;
        *d = p - a;
    }
}

KERNEL_INLINE double conservative_residual(double a, double ac, double c, double x, double xc,
                                           int lower, double *p_out) {
    double p;
    if (lower) {
        p = dmin(dmax(xc, FLOOR), ac * ONE_BELOW);
    } else {
        double lo = a * (1.5 * U);
        lo += a;
        p = dmin(dmax(x, lo), ONE_BELOW);
    }
    double x_f, xc_f, d, bound;
    candidate(a, ac, p, lower, &x_f, &xc_f, &d, &bound);
    double t1 = kernel_log1p(d / xc_f) * ac;
    double t2 = kernel_log1p(d / a) * a;
    double r = t1 - t2;
    r -= c;
    t1 += t2;
    t1 += dabs(r);
    t1 *= ERR;
    *p_out = p;
    return t1 - r;
}

KERNEL_INLINE double conservative_finish(double a, double ac, double p, double e_minus_r,
                                         int lower) {
    double x_f, xc_f, d, bound;
    candidate(a, ac, p, lower, &x_f, &xc_f, &d, &bound);
    double g = x_f * xc_f;
    g = d / g;
    double step = e_minus_r / g;
    step += dabs(step) * STEP_SLACK;
    double res;
    if (lower) {
        res = xc_f - step;
        res *= DOWN;
        res = dmin(dmax(res, 0.0), bound);
    } else {
        res = x_f + step;
        res *= UP;
        res = dmin(dmax(res, bound), 1.0);
    }
    return res;
}

/*
 * The inverses of n elements, in blocks of BLOCK that stay in L1, stage by stage: each stage's
 * loop body is short enough for the CPU to overlap several iterations (one loop over the whole
 * algorithm is a single dependency chain and runs at its latency: 1.5x slower).
 */
enum { BLOCK = 256 };

/* Whether every pair of a block lies in the interior domain (NaN does not). */
KERNEL_INLINE int block_in_domain(const double *restrict q, const double *restrict c,
                                  Py_ssize_t m, double q_min) {
    int inside = 1;
    for (Py_ssize_t i = 0; i < m; ++i)
        inside &= (q[i] >= q_min) & (q[i] < ONE_BELOW) & (c[i] > 0.0) & (c[i] < C_MAX);
    return inside;
}

/* The number of leading pairs written: n, or the start of the first block with a pair outside
 * the interior domain. */
KERNEL_INLINE Py_ssize_t inverse_blocks(const double *restrict q, const double *restrict c,
                                 double *restrict out, Py_ssize_t n, int lower) {
    double a[BLOCK], ac[BLOCK], x[BLOCK], xc[BLOCK], d[BLOCK], t[BLOCK];
    const double q_min = lower ? Q_MIN_LOWER : Q_MIN_UPPER;
    for (Py_ssize_t s = 0; s < n; s += BLOCK) {
        const Py_ssize_t m = n - s < BLOCK ? n - s : BLOCK;
        const double *qs = q + s, *cs = c + s;
        double *outs = out + s;
        if (!block_in_domain(qs, cs, m, q_min)) return s;
        for (Py_ssize_t i = 0; i < m; ++i)
            start_exponent(qs[i], cs[i], lower, &a[i], &ac[i], &t[i]);
        for (Py_ssize_t i = 0; i < m; ++i)
            start_point(a[i], ac[i], cs[i], t[i], &x[i], &xc[i], &d[i]);
        for (int order = 3; order >= 2; --order) {
            for (Py_ssize_t i = 0; i < m; ++i)
                t[i] = newton_residual(a[i], ac[i], cs[i], xc[i], &d[i]);
            for (Py_ssize_t i = 0; i < m; ++i)
                t[i] = newton_type_displacement(t[i], x[i], xc[i], d[i], order);
            for (Py_ssize_t i = 0; i < m; ++i) apply_displacement(t[i], &x[i], &xc[i], &d[i]);
        }
        for (Py_ssize_t i = 0; i < m; ++i)
            t[i] = conservative_residual(a[i], ac[i], cs[i], x[i], xc[i], lower, &x[i]);
        for (Py_ssize_t i = 0; i < m; ++i)
            outs[i] = conservative_finish(a[i], ac[i], x[i], t[i], lower);
    }
    return n;
}

#ifdef KERNEL_X86_DISPATCH
/* The same loops compiled for AVX2 + FMA (x86-64-v3); used when the CPU has both. */
__attribute__((target("arch=x86-64-v3"), noinline)) static Py_ssize_t inverse_upper_v3(
    const double *restrict q, const double *restrict c, double *restrict out, Py_ssize_t n) {
    return inverse_blocks(q, c, out, n, 0);
}

__attribute__((target("arch=x86-64-v3"), noinline)) static Py_ssize_t inverse_lower_v3(
    const double *restrict q, const double *restrict c, double *restrict out, Py_ssize_t n) {
    return inverse_blocks(q, c, out, n, 1);
}
#endif

KERNEL_NOINLINE static Py_ssize_t inverse_upper_base(const double *restrict q,
                                               const double *restrict c,
                                               double *restrict out, Py_ssize_t n) {
    return inverse_blocks(q, c, out, n, 0);
}

KERNEL_NOINLINE static Py_ssize_t inverse_lower_base(const double *restrict q,
                                               const double *restrict c,
                                               double *restrict out, Py_ssize_t n) {
    return inverse_blocks(q, c, out, n, 1);
}

typedef Py_ssize_t (*inverse_fn)(const double *restrict, const double *restrict,
                                 double *restrict, Py_ssize_t);
static inverse_fn inverse_upper = inverse_upper_base;
static inverse_fn inverse_lower = inverse_lower_base;
static const char *kernel_isa = "baseline";

/* Picks the AVX2 + FMA loops when the CPU has them (called once, when the module loads). */
static void select_kernels(void) {
#ifdef KERNEL_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        inverse_upper = inverse_upper_v3;
        inverse_lower = inverse_lower_v3;
        kernel_isa = "x86-64-v3";
    }
#endif
}

/* ---------------------------------------------------------------------------------------- */
/* Python binding                                                                           */
/* ---------------------------------------------------------------------------------------- */

static int get_float64_buffer(PyObject *obj, Py_buffer *view, int writable, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) return -1;
    if (view->itemsize != 8 || view->format == NULL || strcmp(view->format, "d") != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous float64 buffer", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *interior(PyObject *self, PyObject *args) {
    PyObject *q_obj, *c_obj, *out_obj;
    int lower, baseline = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOp|p:interior", &q_obj, &c_obj, &out_obj, &lower, &baseline))
        return NULL;
    Py_buffer qv, cv, ov;
    if (get_float64_buffer(q_obj, &qv, 0, "q") != 0) return NULL;
    if (get_float64_buffer(c_obj, &cv, 0, "c") != 0) {
        PyBuffer_Release(&qv);
        return NULL;
    }
    if (get_float64_buffer(out_obj, &ov, 1, "out") != 0) {
        PyBuffer_Release(&qv);
        PyBuffer_Release(&cv);
        return NULL;
    }
    PyObject *result = NULL;
    if (qv.len != cv.len || qv.len != ov.len) {
        PyErr_SetString(PyExc_ValueError, "q, c and out must have the same length");
    } else {
        Py_ssize_t n = qv.len / 8;
        const double *q = qv.buf, *c = cv.buf;
        double *out = ov.buf;
        Py_ssize_t done;
        Py_BEGIN_ALLOW_THREADS
        if (baseline)
            done = lower ? inverse_lower_base(q, c, out, n) : inverse_upper_base(q, c, out, n);
        else
            done = lower ? inverse_lower(q, c, out, n) : inverse_upper(q, c, out, n);
        Py_END_ALLOW_THREADS
        result = PyLong_FromSsize_t(done);
    }
    PyBuffer_Release(&qv);
    PyBuffer_Release(&cv);
    PyBuffer_Release(&ov);
    return result;
}

static PyObject *elementary(PyObject *self, PyObject *args) {
    /* The kernel's own log, log1p or exp over a buffer: for the accuracy tests. */
    PyObject *x_obj, *out_obj;
    int which;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOi:elementary", &x_obj, &out_obj, &which)) return NULL;
    if (which < 0 || which > 2) {
        PyErr_Format(PyExc_ValueError, "which must be 0 (log), 1 (log1p) or 2 (exp); got %d",
                     which);
        return NULL;
    }
    Py_buffer xv, ov;
    if (get_float64_buffer(x_obj, &xv, 0, "x") != 0) return NULL;
    if (get_float64_buffer(out_obj, &ov, 1, "out") != 0) {
        PyBuffer_Release(&xv);
        return NULL;
    }
    PyObject *result = NULL;
    if (xv.len != ov.len) {
        PyErr_SetString(PyExc_ValueError, "x and out must have the same length");
    } else {
        const double *x = xv.buf;
        double *out = ov.buf;
        for (Py_ssize_t i = 0; i < xv.len / 8; ++i)
            out[i] = which == 0 ? kernel_log(x[i]) : which == 1 ? kernel_log1p(x[i])
                                                                : kernel_exp(x[i]);
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&xv);
    PyBuffer_Release(&ov);
    return result;
}

static PyMethodDef methods[] = {
    {"interior", interior, METH_VARARGS,
     "interior(q, c, out, lower, baseline=False) -> int: the kl inverses of (q, c) into\n"
     "out, block by block while every pair lies in the interior domain (Q_MIN_UPPER or\n"
     "Q_MIN_LOWER <= q < 1 - 2^-53, 0 < c < C_MAX); returns how many leading pairs it wrote.\n"
     "baseline=True runs the SSE2 loops even where AVX2 ones were chosen."},
    {"elementary", elementary, METH_VARARGS,
     "elementary(x, out, which): the kernel's own log (0), log1p (1) or exp (2) of x into out."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_kl_inverse_kernel",
    .m_doc = "Fused compiled kernel of pacbound's kl inverses (see _kl_inverse.py).",
    .m_size = -1,
    .m_methods = methods,
};

static int add_float(PyObject *mod, const char *name, double value) {
    PyObject *obj = PyFloat_FromDouble(value);
    if (obj == NULL) return -1;
    int status = PyModule_AddObjectRef(mod, name, obj);
    Py_DECREF(obj);
    return status;
}

PyMODINIT_FUNC PyInit__kl_inverse_kernel(void) {
    select_kernels();
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL) return NULL;
    if (PyModule_AddStringConstant(mod, "ISA", kernel_isa) != 0 ||
        add_float(mod, "Q_MIN_UPPER", Q_MIN_UPPER) != 0 ||
        add_float(mod, "Q_MIN_LOWER", Q_MIN_LOWER) != 0 || add_float(mod, "C_MAX", C_MAX) != 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
