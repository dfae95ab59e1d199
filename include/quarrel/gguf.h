/* gguf.h — GGUF (v2, v3) reader, validator and writer.
 *
 * Reader: gguf_open maps the file read-only; every string, array and tensor payload
 * stays in the mapping (zero copy). gguf_open_buffer parses caller memory the same way
 * (borrowed, must outlive the gguf_file). Everything is validated before the call
 * returns Q_OK: afterwards every pointer and length in the structures is in bounds, so
 * consumers never re-check. On failure err->msg is one line naming the problem, the key
 * or tensor, and the byte offset. The on-disk format is specified in src/gguf/gguf_read.c.
 *
 * Writer: collects key/values (in insertion order; re-setting a key replaces it in
 * place) and tensor infos, then streams a GGUF v3 file: header, infos, padding to
 * general.alignment (default 32), and tensor data, each tensor padded to the alignment.
 * The file is written to PATH.tmp, fsync'ed and renamed, so a failed write never leaves
 * a half file at PATH. */
#ifndef QUARREL_GGUF_H
#define QUARREL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quarrel/status.h"
#include "quarrel/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GGUF_MAGIC             0x46554747u  /* "GGUF" read as a little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS          4

typedef enum gguf_vtype {
    GGUF_VT_UINT8   = 0,
    GGUF_VT_INT8    = 1,
    GGUF_VT_UINT16  = 2,
    GGUF_VT_INT16   = 3,
    GGUF_VT_UINT32  = 4,
    GGUF_VT_INT32   = 5,
    GGUF_VT_FLOAT32 = 6,
    GGUF_VT_BOOL    = 7,
    GGUF_VT_STRING  = 8,
    GGUF_VT_ARRAY   = 9,
    GGUF_VT_UINT64  = 10,
    GGUF_VT_INT64   = 11,
    GGUF_VT_FLOAT64 = 12,
    GGUF_VT_COUNT
} gguf_vtype;

/* A string inside the mapping (or writer memory): NOT NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t    len;
} gguf_str;

typedef struct gguf_value gguf_value;
struct gguf_value {
    gguf_vtype type;
    union {
        uint64_t u64;   /* UINT8/16/32/64, widened */
        int64_t  i64;   /* INT8/16/32/64, sign-extended */
        double   f64;   /* FLOAT32/64, widened */
        bool     b;     /* BOOL */
        gguf_str str;   /* STRING */
        struct {
            gguf_vtype  type;   /* element type */
            uint64_t    n;      /* element count */
            const void *data;   /* numeric/bool elements: raw little-endian, maybe unaligned;
                                   read them with gguf_arr_* */
            gguf_str   *strs;   /* STRING elements: n entries, owned by the gguf_file */
            gguf_value *items;  /* ARRAY elements: n nested arrays, owned by the gguf_file */
        } arr;
    };
};

typedef struct gguf_kv {
    gguf_str   key;
    gguf_value val;
    uint64_t   offset;          /* file offset of the key, for messages */
} gguf_kv;

typedef struct gguf_tensor_info {
    gguf_str    name;
    uint32_t    n_dims;
    int64_t     ne[GGUF_MAX_DIMS];  /* ne[0] = row length; dims past n_dims are 1 */
    q_type      type;
    uint64_t    offset;             /* relative to the data section */
    uint64_t    nbytes;
    const void *data;               /* into the mapping */
} gguf_tensor_info;

typedef struct gguf_file {
    uint32_t          version;
    uint64_t          n_kv;
    gguf_kv          *kv;           /* in file order */
    uint64_t          n_tensors;
    gguf_tensor_info *tensors;      /* in file order */
    uint64_t          alignment;
    uint64_t          data_offset;  /* file offset of the data section */
    const uint8_t    *base;         /* the whole file */
    uint64_t          size;
    struct gguf_priv *priv;         /* mapping and lookup indexes */
} gguf_file;

/* ---- reader ---- */
q_status gguf_open(const char *path, gguf_file **out, q_error *err);
q_status gguf_open_buffer(const void *buf, size_t size, gguf_file **out, q_error *err);
void     gguf_close(gguf_file *f);   /* NULL is fine */

const gguf_kv          *gguf_find(const gguf_file *f, const char *key);          /* NULL if absent */
const gguf_tensor_info *gguf_find_tensor(const gguf_file *f, const char *name);  /* NULL if absent */

/* Typed lookups: false when the key is absent or holds an incompatible type.
 * Integers of any width and signedness convert when the value fits; floats accept any
 * numeric type. */
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f64(const gguf_file *f, const char *key, double *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
const gguf_value *gguf_get_arr(const gguf_file *f, const char *key);  /* NULL unless an array */

/* Element i of a numeric/bool array (i < arr.n), converted. */
int64_t  gguf_arr_i64(const gguf_value *arr, uint64_t i);
uint64_t gguf_arr_u64(const gguf_value *arr, uint64_t i);
double   gguf_arr_f64(const gguf_value *arr, uint64_t i);

const char *gguf_vtype_name(gguf_vtype t);     /* "u32", "string", ... ; "?" if unknown */
size_t      gguf_vtype_size(gguf_vtype t);     /* bytes of a scalar element; 0 for STRING/ARRAY */
bool        gguf_str_eq(gguf_str s, const char *z);
char       *gguf_str_dup(gguf_str s);          /* malloc'ed NUL-terminated copy */

/* ---- writer ---- */
typedef struct gguf_writer gguf_writer;

/* Supplies tensor i's bytes (exactly nbytes) at write time, for tensors added with
 * data == NULL. Returns Q_OK or an error status (with err filled) to abort the write. */
typedef q_status (*gguf_tensor_fill_fn)(void *user, uint64_t i, void *dst, size_t nbytes, q_error *err);

gguf_writer *gguf_writer_new(void);
void         gguf_writer_free(gguf_writer *w);

/* Values are deep-copied. Keys are copied. */
void gguf_writer_set_u8 (gguf_writer *w, const char *key, uint8_t v);
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
void gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem, const void *data, uint64_t n);
void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
void gguf_writer_set_value(gguf_writer *w, gguf_str key, const gguf_value *v);  /* copy from a reader */

/* Adds a tensor; data (nbytes = row size * rows) is borrowed until the write, or NULL
 * to be supplied by the fill callback. Returns the tensor's index. */
uint64_t gguf_writer_add_tensor(gguf_writer *w, const char *name, q_type type, uint32_t n_dims,
                                const int64_t *ne, const void *data);

q_status gguf_writer_write(gguf_writer *w, const char *path, gguf_tensor_fill_fn fill, void *user,
                           q_error *err);

#ifdef __cplusplus
}
#endif
#endif
