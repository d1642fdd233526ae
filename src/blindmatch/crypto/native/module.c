/* CPython glue for the native ristretto255 batch backend (blindmatch.crypto.native._r255).
 *
 * Every entry point takes whole batches as contiguous buffers, releases the GIL for the
 * arithmetic (so a Python thread pool spreads batches over all cores) and returns the
 * outputs plus the index of the first failing element (-1 when none failed). `path`
 * names the arithmetic: "portable" (radix 2^51), "avx2" (radix 2^25.5, 4 lanes) or "ifma"
 * (AVX-512 IFMA, 8 lanes); paths() lists those this CPU runs, fastest last. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include "r255_backends.h"
#include "scalar.h"
#include "sha512.h"
#include "msm.h"

typedef void (*mult_fn)(uint8_t *, uint8_t *, const uint8_t *, size_t, const uint8_t *, size_t);
typedef void (*uniform_fn)(uint8_t *, uint8_t *, const uint8_t *, size_t, const uint8_t *, size_t);
typedef void (*validate_fn)(uint8_t *, const uint8_t *, size_t, int);
typedef struct {
    const char *name;
    mult_fn mult;
    uniform_fn from_uniform;
    validate_fn validate;
    long (*msm)(uint8_t *, const uint8_t *, const uint8_t *, size_t);
    void (*add)(uint8_t *, uint8_t *, const uint8_t *, const uint8_t *, size_t, int);
} backend;

static const backend PORTABLE = {"portable", r255_portable_mult, r255_portable_from_uniform, r255_portable_validate,
                                 r255_portable_msm, r255_portable_add};
#if R255_HAVE_AVX2
static const backend AVX2 = {"avx2", r255_avx2_mult, r255_avx2_from_uniform, r255_avx2_validate, r255_avx2_msm,
                             r255_avx2_add};
#endif
#if R255_HAVE_IFMA
static const backend IFMA = {"ifma", r255_ifma_mult, r255_ifma_from_uniform, r255_ifma_validate, r255_ifma_msm,
                             r255_ifma_add};
#endif

static int cpu_has_ifma(void) {
#if R255_HAVE_IFMA
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
#else
    return 0;
#endif
}

static int cpu_has_avx2(void) {
#if R255_HAVE_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

static const backend *find_backend(const char *name) {
    if (strcmp(name, "portable") == 0) return &PORTABLE;
#if R255_HAVE_AVX2
    if (strcmp(name, "avx2") == 0 && cpu_has_avx2()) return &AVX2;
#endif
#if R255_HAVE_IFMA
    if (strcmp(name, "ifma") == 0 && cpu_has_ifma()) return &IFMA;
#endif
    PyErr_Format(PyExc_ValueError, "arithmetic path %s is not available on this machine", name);
    return NULL;
}

static Py_ssize_t first_bad(const uint8_t *bad, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (bad[i]) return (Py_ssize_t)i;
    return -1;
}

static PyObject *py_paths(PyObject *self, PyObject *args) {
    (void)self; (void)args;
    PyObject *paths = PyList_New(0);
    if (paths == NULL) return NULL;
    const char *names[3] = {"portable", cpu_has_avx2() ? "avx2" : NULL, cpu_has_ifma() ? "ifma" : NULL};
    for (int i = 0; i < 3; i++) {
        if (names[i] == NULL) continue;
        PyObject *name = PyUnicode_FromString(names[i]);
        if (name == NULL || PyList_Append(paths, name) != 0) { Py_XDECREF(name); Py_DECREF(paths); return NULL; }
        Py_DECREF(name);
    }
    PyObject *result = PyList_AsTuple(paths);
    Py_DECREF(paths);
    return result;
}

/* mult(path, scalars, points) -> (bytes, first_bad): one scalar (32 bytes) or one per point. */
static PyObject *py_mult(PyObject *self, PyObject *args) {
    (void)self;
    const char *path;
    Py_buffer sc, pts;
    if (!PyArg_ParseTuple(args, "sy*y*", &path, &sc, &pts)) return NULL;
    PyObject *result = NULL;
    const backend *be = find_backend(path);
    size_t n = (size_t)pts.len / 32;
    if (be == NULL) goto done;
    if (pts.len % 32 != 0 || !(sc.len == 32 || (size_t)sc.len == 32 * n)) {
        PyErr_SetString(PyExc_ValueError, "need 32-byte points and one scalar or one scalar per point");
        goto done;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * n));
    uint8_t *bad = malloc(n ? n : 1);
    if (out == NULL || bad == NULL) { Py_XDECREF(out); free(bad); PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    be->mult((uint8_t *)PyBytes_AS_STRING(out), bad, sc.buf, sc.len == 32 ? 0 : 32, pts.buf, n);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(Nn)", out, first_bad(bad, n));
    free(bad);
done:
    PyBuffer_Release(&sc);
    PyBuffer_Release(&pts);
    return result;
}

/* add(path, p, q, subtract) -> (bytes, first_bad): p_i + q_i (or p_i - q_i) of equally many
 * encoded points; first_bad names the first pair with an element failing Decode. */
static PyObject *py_add(PyObject *self, PyObject *args) {
    (void)self;
    const char *path;
    Py_buffer p, q;
    int subtract;
    if (!PyArg_ParseTuple(args, "sy*y*p", &path, &p, &q, &subtract)) return NULL;
    PyObject *result = NULL;
    const backend *be = find_backend(path);
    size_t n = (size_t)p.len / 32;
    if (be == NULL) goto done;
    if (p.len % 32 != 0 || p.len != q.len) {
        PyErr_SetString(PyExc_ValueError, "need two equally long lists of 32-byte points");
        goto done;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * n));
    uint8_t *bad = malloc(n ? n : 1);
    if (out == NULL || bad == NULL) { Py_XDECREF(out); free(bad); PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    be->add((uint8_t *)PyBytes_AS_STRING(out), bad, p.buf, q.buf, n, subtract);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(Nn)", out, first_bad(bad, n));
    free(bad);
done:
    PyBuffer_Release(&p);
    PyBuffer_Release(&q);
    return result;
}

/* Messages are concatenated in `data`; `offsets` holds n + 1 native uint64 boundaries. */
static int check_messages(const Py_buffer *data, const Py_buffer *offsets, size_t *n) {
    if (offsets->len % 8 != 0 || offsets->len < 8) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold n + 1 uint64 values");
        return -1;
    }
    const uint64_t *off = offsets->buf;
    *n = (size_t)offsets->len / 8 - 1;
    for (size_t i = 0; i < *n; i++)
        if (off[i] > off[i + 1] || off[i + 1] > (uint64_t)data->len) {
            PyErr_SetString(PyExc_ValueError, "offsets are not increasing within the data");
            return -1;
        }
    return 0;
}

static void expand_all(uint8_t *uniform, const Py_buffer *data, const uint64_t *off, size_t n, const Py_buffer *dst) {
    for (size_t i = 0; i < n; i++)
        expand_xmd_sha512_64(uniform + 64 * i, (const uint8_t *)data->buf + off[i], off[i + 1] - off[i], dst->buf,
                             (size_t)dst->len);
}

/* hash_to_group(path, data, offsets, dst, scalars) -> (bytes, first_identity):
 * Encode([scalar_i *] HashToGroup(msg_i)) per RFC 9497 / RFC 9380 / RFC 9496, where
 * scalars is b"" (no multiplication), one 32-byte scalar, or one per message. */
static PyObject *py_hash_to_group(PyObject *self, PyObject *args) {
    (void)self;
    const char *path;
    Py_buffer data, offsets, dst, sc;
    if (!PyArg_ParseTuple(args, "sy*y*y*y*", &path, &data, &offsets, &dst, &sc)) return NULL;
    PyObject *result = NULL;
    size_t n = 0;
    const backend *be = find_backend(path);
    if (be == NULL || check_messages(&data, &offsets, &n) != 0) goto done;
    if (dst.len > 255 || !(sc.len == 0 || sc.len == 32 || (size_t)sc.len == 32 * n)) {
        PyErr_SetString(PyExc_ValueError, "dst longer than 255 bytes, or not zero, one or n scalars");
        goto done;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * n));
    uint8_t *uniform = malloc(64 * (n ? n : 1)), *bad = malloc(n ? n : 1);
    if (out == NULL || uniform == NULL || bad == NULL) {
        Py_XDECREF(out); free(uniform); free(bad); PyErr_NoMemory(); goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    expand_all(uniform, &data, offsets.buf, n, &dst);
    be->from_uniform((uint8_t *)PyBytes_AS_STRING(out), bad, uniform, n, sc.len ? sc.buf : NULL,
                     (size_t)sc.len == 32 ? 0 : 32);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(Nn)", out, first_bad(bad, n));
    for (volatile uint8_t *w = uniform; w < uniform + 64 * n; w++) *w = 0; /* hashes of the inputs */
    free(uniform);
    free(bad);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&sc);
    return result;
}

/* from_uniform(path, uniform) -> (bytes, first_identity): RFC 9496 element derivation. */
static PyObject *py_from_uniform(PyObject *self, PyObject *args) {
    (void)self;
    const char *path;
    Py_buffer u;
    if (!PyArg_ParseTuple(args, "sy*", &path, &u)) return NULL;
    PyObject *result = NULL;
    const backend *be = find_backend(path);
    size_t n = (size_t)u.len / 64;
    if (be == NULL) goto done;
    if (u.len % 64 != 0) { PyErr_SetString(PyExc_ValueError, "uniform input must be n * 64 bytes"); goto done; }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * n));
    uint8_t *bad = malloc(n ? n : 1);
    if (out == NULL || bad == NULL) { Py_XDECREF(out); free(bad); PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    be->from_uniform((uint8_t *)PyBytes_AS_STRING(out), bad, u.buf, n, NULL, 0);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(Nn)", out, first_bad(bad, n));
    free(bad);
done:
    PyBuffer_Release(&u);
    return result;
}

/* validate(path, points, reject_identity) -> first invalid index or -1 (RFC 9496 Decode). */
static PyObject *py_validate(PyObject *self, PyObject *args) {
    (void)self;
    const char *path;
    Py_buffer pts;
    int reject_identity;
    if (!PyArg_ParseTuple(args, "sy*p", &path, &pts, &reject_identity)) return NULL;
    PyObject *result = NULL;
    const backend *be = find_backend(path);
    size_t n = (size_t)pts.len / 32;
    if (be == NULL) goto done;
    if (pts.len % 32 != 0) { PyErr_SetString(PyExc_ValueError, "points must be n * 32 bytes"); goto done; }
    uint8_t *bad = malloc(n ? n : 1);
    if (bad == NULL) { PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    be->validate(bad, pts.buf, n, reject_identity);
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(first_bad(bad, n));
    free(bad);
done:
    PyBuffer_Release(&pts);
    return result;
}

/* scalar_invert(scalars) -> bytes: inverses mod L of n canonical non-zero scalars. */
static PyObject *py_scalar_invert(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer sc;
    if (!PyArg_ParseTuple(args, "y*", &sc)) return NULL;
    PyObject *out = NULL;
    int rc = 0;
    if (sc.len % 32 != 0) { PyErr_SetString(PyExc_ValueError, "scalars must be n * 32 bytes"); goto done; }
    out = PyBytes_FromStringAndSize(NULL, sc.len);
    if (out == NULL) goto done;
    Py_BEGIN_ALLOW_THREADS
    rc = scalar_invert_batch((uint8_t *)PyBytes_AS_STRING(out), sc.buf, (size_t)sc.len / 32);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        Py_CLEAR(out);
        if (rc == -1) PyErr_SetString(PyExc_ValueError, "cannot invert a batch containing the zero scalar");
        else PyErr_NoMemory();
    }
done:
    PyBuffer_Release(&sc);
    return out;
}

/* finalize(data, offsets, elements[, info]) -> (n * 64 bytes, first_too_long): RFC 9497
 * Finalize's hash, SHA-512(I2OSP(len(input), 2) || input || I2OSP(32, 2) || element ||
 * "Finalize") in OPRF and VOPRF mode; with info (POPRF mode), I2OSP(len(info), 2) || info
 * goes between the input and the element. */
static PyObject *py_finalize(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data, offsets, elements, info = {0};
    if (!PyArg_ParseTuple(args, "y*y*y*|y*", &data, &offsets, &elements, &info)) return NULL;
    PyObject *result = NULL;
    size_t n = 0;
    const int with_info = info.buf != NULL;
    if (check_messages(&data, &offsets, &n) != 0) goto done;
    if ((size_t)elements.len != 32 * n) { PyErr_SetString(PyExc_ValueError, "need one 32-byte element per input"); goto done; }
    if (with_info && info.len > 0xffff) { PyErr_SetString(PyExc_ValueError, "info longer than 65535 bytes"); goto done; }
    const uint64_t *off = offsets.buf;
    Py_ssize_t too_long = -1;
    for (size_t i = 0; i < n && too_long < 0; i++)
        if (off[i + 1] - off[i] > 0xffff) too_long = (Py_ssize_t)i;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(64 * n));
    if (out == NULL) goto done;
    if (too_long < 0) {
        Py_BEGIN_ALLOW_THREADS
        uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
        const uint8_t element_len[2] = {0, 32}, label[8] = {'F', 'i', 'n', 'a', 'l', 'i', 'z', 'e'};
        const uint8_t info_len[2] = {(uint8_t)((size_t)info.len >> 8), (uint8_t)info.len};
        for (size_t i = 0; i < n; i++) {
            size_t len = off[i + 1] - off[i];
            const uint8_t input_len[2] = {(uint8_t)(len >> 8), (uint8_t)len};
            sha512_ctx c;
            sha512_init(&c);
            sha512_update(&c, input_len, 2);
            sha512_update(&c, (const uint8_t *)data.buf + off[i], len);
            if (with_info) {
                sha512_update(&c, info_len, 2);
                sha512_update(&c, info.buf, (size_t)info.len);
            }
            sha512_update(&c, element_len, 2);
            sha512_update(&c, (const uint8_t *)elements.buf + 32 * i, 32);
            sha512_update(&c, label, 8);
            sha512_final(&c, dst + 64 * i);
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_BuildValue("(Nn)", out, too_long);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&elements);
    if (with_info) PyBuffer_Release(&info);
    return result;
}

/* scalar_reduce(uniform) -> n * 32 bytes: each 64-byte little-endian integer mod L, in
 * constant time (RFC 9496 scalars from uniform bytes; fresh blinds from random bytes). */
static PyObject *py_scalar_reduce(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer uniform;
    if (!PyArg_ParseTuple(args, "y*", &uniform)) return NULL;
    PyObject *out = NULL;
    if (uniform.len % 64 != 0) { PyErr_SetString(PyExc_ValueError, "need 64 bytes per scalar"); goto done; }
    size_t n = (size_t)uniform.len / 64;
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * n));
    if (out == NULL) goto done;
    Py_BEGIN_ALLOW_THREADS
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    for (size_t i = 0; i < n; i++) scalar_reduce64(dst + 32 * i, (const uint8_t *)uniform.buf + 64 * i);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&uniform);
    return out;
}

/* expand_message_xmd(data, offsets, dst) -> n * 64 bytes (exposed for differential tests). */
static PyObject *py_expand(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data, offsets, dst;
    if (!PyArg_ParseTuple(args, "y*y*y*", &data, &offsets, &dst)) return NULL;
    PyObject *out = NULL;
    size_t n = 0;
    if (check_messages(&data, &offsets, &n) != 0) goto done;
    if (dst.len > 255) { PyErr_SetString(PyExc_ValueError, "dst longer than 255 bytes"); goto done; }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(64 * n));
    if (out == NULL) goto done;
    Py_BEGIN_ALLOW_THREADS
    expand_all((uint8_t *)PyBytes_AS_STRING(out), &data, offsets.buf, n, &dst);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&dst);
    return out;
}

/* msm(path, scalars, points) -> (32 bytes, first_bad): Encode(sum s_i P_i) over public
 * inputs (variable time, on `path`'s lanes); first_bad names the first point
 * failing Decode or being the identity. */
static PyObject *py_msm(PyObject *self, PyObject *args) {
    (void)self;
    const char *path;
    Py_buffer sc, pts;
    if (!PyArg_ParseTuple(args, "sy*y*", &path, &sc, &pts)) return NULL;
    PyObject *result = NULL;
    uint8_t out[32] = {0};
    long bad = -1;
    const backend *be = find_backend(path);
    if (be == NULL) goto done;
    if (pts.len % 32 != 0 || sc.len != pts.len) {
        PyErr_SetString(PyExc_ValueError, "need one 32-byte scalar per 32-byte point");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    bad = be->msm(out, sc.buf, pts.buf, (size_t)pts.len / 32);
    Py_END_ALLOW_THREADS
    if (bad == -2) PyErr_NoMemory();
    else result = Py_BuildValue("(y#l)", (const char *)out, (Py_ssize_t)32, bad);
done:
    PyBuffer_Release(&sc);
    PyBuffer_Release(&pts);
    return result;
}

/* composite_weights(seed, c, d, start, dst) -> n * 32 bytes: RFC 9497 ComputeComposites'
 * d_i for the elements c, d (n each) whose first index in the batch is start. */
static PyObject *py_composite_weights(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer seed, c, d, dst;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "y*y*y*ny*", &seed, &c, &d, &start, &dst)) return NULL;
    PyObject *out = NULL;
    size_t n = (size_t)c.len / 32;
    if (seed.len > 255 || dst.len > 255 || c.len % 32 != 0 || c.len != d.len || start < 0 ||
        (size_t)start + n > 65536) {
        PyErr_SetString(PyExc_ValueError, "seed/dst over 255 bytes, C and D unequal, or indices beyond 2^16");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * n));
    if (out == NULL) goto done;
    Py_BEGIN_ALLOW_THREADS
    r255_composite_weights((uint8_t *)PyBytes_AS_STRING(out), seed.buf, (size_t)seed.len, c.buf, d.buf, (size_t)start,
                           n, dst.buf, (size_t)dst.len);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&seed);
    PyBuffer_Release(&c);
    PyBuffer_Release(&d);
    PyBuffer_Release(&dst);
    return out;
}

static PyMethodDef methods[] = {
    {"paths", py_paths, METH_NOARGS, "Arithmetic paths this CPU can run."},
    {"mult", py_mult, METH_VARARGS, "Batch scalar multiplication of encoded elements."},
    {"add", py_add, METH_VARARGS, "Batch addition or subtraction of encoded elements."},
    {"hash_to_group", py_hash_to_group, METH_VARARGS, "Batch RFC 9497 HashToGroup, optionally times a scalar."},
    {"from_uniform", py_from_uniform, METH_VARARGS, "Batch RFC 9496 element derivation from 64 bytes."},
    {"validate", py_validate, METH_VARARGS, "Index of the first element that fails RFC 9496 Decode."},
    {"scalar_invert", py_scalar_invert, METH_VARARGS, "Batch inversion modulo the group order."},
    {"finalize", py_finalize, METH_VARARGS, "Batch RFC 9497 Finalize hash of (input, unblinded element) pairs."},
    {"scalar_reduce", py_scalar_reduce, METH_VARARGS, "Batch reduction of 64-byte integers modulo the group order."},
    {"expand_message_xmd", py_expand, METH_VARARGS, "Batch RFC 9380 expand_message_xmd(SHA-512, 64 bytes)."},
    {"msm", py_msm, METH_VARARGS, "Variable-time multi-scalar multiplication of public inputs."},
    {"composite_weights", py_composite_weights, METH_VARARGS, "RFC 9497 ComputeComposites weights d_i."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_r255", "Native ristretto255 batch backend.", -1,
                                       methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__r255(void) { return PyModule_Create(&moduledef); }
