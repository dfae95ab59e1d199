/* cmd_info.c — `quarrel info MODEL [--json] [--tensors]`: describes a GGUF file.
 *
 * Prints the architecture, name, parameter count, file type, per-type tensor counts and
 * bytes, file size, GGUF version, every `<arch>.*` hyperparameter, a tokenizer summary,
 * the other general.* keys and the remaining keys (long arrays summarized as
 * "[n x type] first items..."), and with --tensors the tensor table. --json prints the
 * same as one JSON object (jansson). Not a validator of its own: it trusts gguf_open,
 * which has checked every length and pointer. A malformed file exits 1 with one line. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/base.h"
#include "cpu/repack.h"
#include "quarrel/gguf.h"

/* llama.cpp's general.file_type values (enum llama_ftype) and their names. */
static const char *const ftype_names[] = {
    [0] = "ALL_F32",   [1] = "MOSTLY_F16", [2] = "Q4_0",     [3] = "Q4_1",     [7] = "Q8_0",
    [8] = "Q5_0",      [9] = "Q5_1",       [10] = "Q2_K",    [11] = "Q3_K_S",  [12] = "Q3_K_M",
    [13] = "Q3_K_L",   [14] = "Q4_K_S",    [15] = "Q4_K_M",  [16] = "Q5_K_S",  [17] = "Q5_K_M",
    [18] = "Q6_K",     [19] = "IQ2_XXS",   [20] = "IQ2_XS",  [21] = "Q2_K_S",  [22] = "IQ3_XS",
    [23] = "IQ3_XXS",  [24] = "IQ1_S",     [25] = "IQ4_NL",  [26] = "IQ3_S",   [27] = "IQ3_M",
    [28] = "IQ2_S",    [29] = "IQ2_M",     [30] = "IQ4_XS",  [31] = "IQ1_M",   [32] = "BF16",
    [36] = "TQ1_0",    [37] = "TQ2_0",     [38] = "MXFP4_MOE",
};

static const char *ftype_name(uint64_t ft) {
    return ft < Q_ARRAY_LEN(ftype_names) && ftype_names[ft] ? ftype_names[ft] : "unknown";
}

/* Special-token ids summarized under "tokenizer" (llama.cpp spells "seperator"). */
static const struct { const char *key, *label; } special_ids[] = {
    { "tokenizer.ggml.bos_token_id", "bos" },       { "tokenizer.ggml.eos_token_id", "eos" },
    { "tokenizer.ggml.eot_token_id", "eot" },       { "tokenizer.ggml.eom_token_id", "eom" },
    { "tokenizer.ggml.padding_token_id", "pad" },   { "tokenizer.ggml.unknown_token_id", "unk" },
    { "tokenizer.ggml.seperator_token_id", "sep" }, { "tokenizer.ggml.cls_token_id", "cls" },
    { "tokenizer.ggml.mask_token_id", "mask" },
};
static const struct { const char *key, *label; } tok_flags[] = {
    { "tokenizer.ggml.add_bos_token", "add_bos" }, { "tokenizer.ggml.add_eos_token", "add_eos" },
    { "tokenizer.ggml.add_sep_token", "add_sep" }, { "tokenizer.ggml.add_space_prefix", "add_space_prefix" },
};

enum { ARRAY_HEAD = 8, TEXT_STR_MAX = 120 };

typedef struct info_stats {
    uint64_t params;
    uint64_t count[Q_TYPE_COUNT];
    uint64_t bytes[Q_TYPE_COUNT];
} info_stats;

static void stats_compute(const gguf_file *f, info_stats *st) {
    memset(st, 0, sizeof *st);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor_info *t = &f->tensors[i];
        uint64_t n = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) n *= (uint64_t)t->ne[d];
        st->params += n;
        st->count[t->type]++;
        st->bytes[t->type] += t->nbytes;
    }
}

typedef enum { KEY_ARCH, KEY_TOKENIZER, KEY_GENERAL, KEY_OTHER } key_group;

static key_group key_group_of(gguf_str key, gguf_str arch) {
    if (arch.len && key.len > arch.len && key.ptr[arch.len] == '.' && !memcmp(key.ptr, arch.ptr, (size_t)arch.len))
        return KEY_ARCH;
    if (key.len >= 10 && !memcmp(key.ptr, "tokenizer.", 10)) return KEY_TOKENIZER;
    if (key.len >= 8 && !memcmp(key.ptr, "general.", 8)) return KEY_GENERAL;
    return KEY_OTHER;
}

/* ---- text ---------------------------------------------------------------------------- */

static void text_str(FILE *out, gguf_str s, uint64_t max) {
    fputc('"', out);
    uint64_t n = s.len < max ? s.len : max;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c < 0x20 || c == 0x7f) fprintf(out, "\\x%02x", c);
        else fputc(c, out);
    }
    fputc('"', out);
    if (s.len > max) fprintf(out, "... (%" PRIu64 " bytes)", s.len);
}

/* depth bounds the items shown for nested arrays (a hostile 8-level nest would
 * otherwise print 8^8 items). */
/* Shortest decimal that reads back to the same f32 (or f64): 1e-05, not 9.99999975e-06. */
static void text_real(FILE *out, double v, bool is_f32) {
    char buf[40];
    if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) {   /* 150000, not 1.5e+05 */
        fprintf(out, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (is_f32 ? (float)back == (float)v : back == v) break;
    }
    fputs(buf, out);
}

static void text_value(FILE *out, const gguf_value *v, int depth) {
    switch (v->type) {
    case GGUF_VT_UINT8: case GGUF_VT_UINT16: case GGUF_VT_UINT32: case GGUF_VT_UINT64:
        fprintf(out, "%" PRIu64, v->u64); break;
    case GGUF_VT_INT8: case GGUF_VT_INT16: case GGUF_VT_INT32: case GGUF_VT_INT64:
        fprintf(out, "%" PRId64, v->i64); break;
    case GGUF_VT_FLOAT32: case GGUF_VT_FLOAT64: text_real(out, v->f64, v->type == GGUF_VT_FLOAT32); break;
    case GGUF_VT_BOOL: fputs(v->b ? "true" : "false", out); break;
    case GGUF_VT_STRING: text_str(out, v->str, TEXT_STR_MAX); break;
    case GGUF_VT_ARRAY: {
        fprintf(out, "[%" PRIu64 " x %s]", v->arr.n, gguf_vtype_name(v->arr.type));
        uint64_t n = depth > 1 ? 0 : v->arr.n < ARRAY_HEAD ? v->arr.n : ARRAY_HEAD;
        if (n) fputs(" [", out);
        for (uint64_t i = 0; i < n; i++) {
            if (i) fputs(", ", out);
            if (v->arr.type == GGUF_VT_STRING) text_str(out, v->arr.strs[i], 40);
            else if (v->arr.type == GGUF_VT_ARRAY) text_value(out, &v->arr.items[i], depth + 1);
            else if (v->arr.type == GGUF_VT_FLOAT32 || v->arr.type == GGUF_VT_FLOAT64)
                text_real(out, gguf_arr_f64(v, i), v->arr.type == GGUF_VT_FLOAT32);
            else if (v->arr.type == GGUF_VT_BOOL) fputs(gguf_arr_u64(v, i) ? "true" : "false", out);
            else if (v->arr.type == GGUF_VT_UINT64) fprintf(out, "%" PRIu64, gguf_arr_u64(v, i));
            else fprintf(out, "%" PRId64, gguf_arr_i64(v, i));
        }
        if (n) fputs(v->arr.n > n ? ", ...]" : "]", out);
        break;
    }
    default: fputs("?", out);
    }
}

static void text_keys(FILE *out, const gguf_file *f, gguf_str arch, key_group g, const char *title) {
    bool any = false;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        if (key_group_of(kv->key, arch) != g) continue;
        if (!any) fprintf(out, "%s:\n", title);
        any = true;
        fprintf(out, "  %.*s = ", (int)kv->key.len, kv->key.ptr);
        text_value(out, &kv->val, 0);
        fputc('\n', out);
    }
}

static void print_text(FILE *out, const char *path, const gguf_file *f, const info_stats *st, bool tensors) {
    char h1[64], h2[64];
    gguf_str arch = { "", 0 }, name;
    gguf_get_str(f, "general.architecture", &arch);
    cli_human_bytes(f->size, h1, sizeof h1);
    fprintf(out, "file:            %s\n", path);
    fprintf(out, "size:            %" PRIu64 " bytes (%s)\n", f->size, h1);
    fprintf(out, "gguf version:    %u\n", f->version);
    fprintf(out, "architecture:    %.*s\n", (int)arch.len, arch.ptr);
    if (gguf_get_str(f, "general.name", &name)) fprintf(out, "name:            %.*s\n", (int)name.len, name.ptr);
    uint64_t ft;
    if (gguf_get_u64(f, "general.file_type", &ft)) fprintf(out, "file type:       %s (%" PRIu64 ")\n", ftype_name(ft), ft);
    cli_human_count(st->params, "", h1, sizeof h1);
    fprintf(out, "parameters:      %s (%" PRIu64 ")\n", h1, st->params);
    fprintf(out, "alignment:       %" PRIu64 "\n", f->alignment);
    fprintf(out, "key/values:      %" PRIu64 "\n", f->n_kv);
    fprintf(out, "tensors:         %" PRIu64 "\n", f->n_tensors);
    for (int t = 0; t < Q_TYPE_COUNT; t++) {
        if (!st->count[t]) continue;
        cli_human_bytes(st->bytes[t], h2, sizeof h2);
        fprintf(out, "  %-8s %6" PRIu64 " tensors  %12" PRIu64 " bytes (%s)\n", q_type_name((q_type)t), st->count[t],
                st->bytes[t], h2);
    }
    uint64_t rbytes;
    const int32_t rn = q_repack_plan_file(f, &rbytes);
    cli_human_bytes(rbytes, h2, sizeof h2);
    fprintf(out, "repack at load:  %d tensors, %" PRIu64 " bytes (%s) to the %s x8 layout (QUARREL_REPACK=0: none)\n",
            (int)rn, rbytes, h2, q_cpu_isa_name(q_cpu_isa_best()));
    text_keys(out, f, arch, KEY_ARCH, "hyperparameters");

    fprintf(out, "tokenizer:\n");
    gguf_str s;
    if (gguf_get_str(f, "tokenizer.ggml.model", &s)) fprintf(out, "  model:         %.*s\n", (int)s.len, s.ptr);
    if (gguf_get_str(f, "tokenizer.ggml.pre", &s)) fprintf(out, "  pre:           %.*s\n", (int)s.len, s.ptr);
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens");
    if (toks) fprintf(out, "  vocab size:    %" PRIu64 "\n", toks->arr.n);
    for (size_t i = 0; i < Q_ARRAY_LEN(special_ids); i++) {
        uint64_t id;
        if (!gguf_get_u64(f, special_ids[i].key, &id)) continue;
        char label[32];
        snprintf(label, sizeof label, "%s id:", special_ids[i].label);
        fprintf(out, "  %-15s%" PRIu64, label, id);
        if (toks && toks->arr.type == GGUF_VT_STRING && id < toks->arr.n) {
            fputc(' ', out);
            text_str(out, toks->arr.strs[id], 40);
        }
        fputc('\n', out);
    }
    for (size_t i = 0; i < Q_ARRAY_LEN(tok_flags); i++) {
        bool b;
        char label[32];
        snprintf(label, sizeof label, "%s:", tok_flags[i].label);
        if (gguf_get_bool(f, tok_flags[i].key, &b)) fprintf(out, "  %-15s%s\n", label, b ? "true" : "false");
    }
    if (gguf_get_str(f, "tokenizer.chat_template", &s))
        fprintf(out, "  chat template: present (%" PRIu64 " bytes)\n", s.len);
    else
        fprintf(out, "  chat template: absent\n");
    text_keys(out, f, arch, KEY_GENERAL, "general");
    text_keys(out, f, arch, KEY_TOKENIZER, "tokenizer keys");
    text_keys(out, f, arch, KEY_OTHER, "other keys");
    if (tensors && f->n_tensors) {
        fprintf(out, "tensors:\n  %-40s %-8s %-24s %12s %12s\n", "name", "type", "shape", "bytes", "offset");
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const gguf_tensor_info *t = &f->tensors[i];
            char shape[128];
            size_t o = 0;
            for (uint32_t d = 0; d < t->n_dims; d++)
                o += (size_t)snprintf(shape + o, sizeof shape - o, d ? " x %" PRId64 : "%" PRId64, t->ne[d]);
            fprintf(out, "  %-40.*s %-8s %-24s %12" PRIu64 " %12" PRIu64 "\n", (int)t->name.len, t->name.ptr,
                    q_type_name(t->type), shape, t->nbytes, t->offset);
        }
    }
}

/* ---- JSON ---------------------------------------------------------------------------- */

/* Set when a string from the file was too large to render: cmd_info then fails cleanly
 * rather than print a JSON object with holes (the CLI runs one command per process). */
static bool json_out_of_memory;

static json_t *json_gstr(gguf_str s) {
    json_t *j = json_stringn(s.ptr, (size_t)s.len);
    if (j) return j;
    /* Not valid UTF-8 (or has NULs): an escaped ASCII rendering keeps the output JSON.
     * Sized by the file's string (up to 4 bytes per byte): malloc, not q_xmalloc. */
    char *buf = s.len < (SIZE_MAX - 16) / 4 ? malloc((size_t)s.len * 4 + 16) : NULL;
    if (!buf) {
        json_out_of_memory = true;
        return json_null();
    }
    size_t o = 0;
    for (uint64_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') buf[o++] = (char)c;
        else o += (size_t)sprintf(buf + o, "\\x%02x", c);
    }
    buf[o] = '\0';
    j = json_string(buf);
    free(buf);
    return j;
}

static json_t *json_value(const gguf_value *v, int depth);

static json_t *json_elem(const gguf_value *v, uint64_t i, int depth) {
    switch (v->arr.type) {
    case GGUF_VT_STRING: return json_gstr(v->arr.strs[i]);
    case GGUF_VT_ARRAY: return json_value(&v->arr.items[i], depth + 1);
    case GGUF_VT_FLOAT32: case GGUF_VT_FLOAT64: return json_real(gguf_arr_f64(v, i));
    case GGUF_VT_BOOL: return json_boolean(gguf_arr_u64(v, i));
    case GGUF_VT_UINT64: return json_integer((json_int_t)gguf_arr_u64(v, i));
    default: return json_integer(gguf_arr_i64(v, i));
    }
}

/* Scalars as JSON scalars; arrays of up to ARRAY_HEAD items as JSON arrays, longer ones
 * as {"array_of", "n", "first"}; nested arrays past depth 1 show no items. */
static json_t *json_value(const gguf_value *v, int depth) {
    switch (v->type) {
    case GGUF_VT_UINT8: case GGUF_VT_UINT16: case GGUF_VT_UINT32: case GGUF_VT_UINT64:
        return json_integer((json_int_t)v->u64);
    case GGUF_VT_INT8: case GGUF_VT_INT16: case GGUF_VT_INT32: case GGUF_VT_INT64:
        return json_integer(v->i64);
    case GGUF_VT_FLOAT32: case GGUF_VT_FLOAT64: return json_real(v->f64);
    case GGUF_VT_BOOL: return json_boolean(v->b);
    case GGUF_VT_STRING: return json_gstr(v->str);
    case GGUF_VT_ARRAY: {
        uint64_t n = depth > 1 ? 0 : v->arr.n > ARRAY_HEAD ? ARRAY_HEAD : v->arr.n;
        json_t *a = json_array();
        for (uint64_t i = 0; i < n; i++) json_array_append_new(a, json_elem(v, i, depth));
        if (n == v->arr.n) return a;
        return json_pack("{s:s, s:I, s:o}", "array_of", gguf_vtype_name(v->arr.type), "n", (json_int_t)v->arr.n,
                         "first", a);
    }
    default: return json_null();
    }
}

static json_t *json_keys(const gguf_file *f, gguf_str arch, key_group g) {
    json_t *o = json_object();
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        if (key_group_of(kv->key, arch) != g) continue;
        json_t *k = json_gstr(kv->key);   /* a UTF-8-safe rendering of the key */
        json_object_set_new(o, json_string_value(k), json_value(&kv->val, 0));
        json_decref(k);
    }
    return o;
}

static json_t *build_json(const char *path, const gguf_file *f, const info_stats *st, bool tensors) {
    gguf_str arch = { "", 0 }, s;
    gguf_get_str(f, "general.architecture", &arch);
    json_t *o = json_object();
    json_t *jpath = json_string(path);   /* NULL if the path is not UTF-8 */
    json_object_set_new(o, "file", jpath ? jpath : json_null());
    json_object_set_new(o, "size", json_integer((json_int_t)f->size));
    json_object_set_new(o, "gguf_version", json_integer(f->version));
    json_object_set_new(o, "architecture", json_gstr(arch));
    json_object_set_new(o, "name", gguf_get_str(f, "general.name", &s) ? json_gstr(s) : json_null());
    uint64_t ft;
    if (gguf_get_u64(f, "general.file_type", &ft))
        json_object_set_new(o, "file_type", json_pack("{s:I, s:s}", "id", (json_int_t)ft, "name", ftype_name(ft)));
    else
        json_object_set_new(o, "file_type", json_null());
    json_object_set_new(o, "parameters", json_integer((json_int_t)st->params));
    json_object_set_new(o, "alignment", json_integer((json_int_t)f->alignment));
    json_object_set_new(o, "n_kv", json_integer((json_int_t)f->n_kv));
    json_object_set_new(o, "n_tensors", json_integer((json_int_t)f->n_tensors));
    uint64_t rbytes;
    const int32_t rn = q_repack_plan_file(f, &rbytes);
    json_object_set_new(o, "repack", json_pack("{s:i, s:I, s:s}", "tensors", (int)rn, "bytes", (json_int_t)rbytes,
                                               "kernels", q_cpu_isa_name(q_cpu_isa_best())));
    json_t *types = json_object();
    for (int t = 0; t < Q_TYPE_COUNT; t++)
        if (st->count[t])
            json_object_set_new(types, q_type_name((q_type)t),
                                json_pack("{s:I, s:I}", "count", (json_int_t)st->count[t], "bytes", (json_int_t)st->bytes[t]));
    json_object_set_new(o, "tensor_types", types);
    json_object_set_new(o, "hyperparameters", json_keys(f, arch, KEY_ARCH));

    json_t *tok = json_object();
    json_object_set_new(tok, "model", gguf_get_str(f, "tokenizer.ggml.model", &s) ? json_gstr(s) : json_null());
    json_object_set_new(tok, "pre", gguf_get_str(f, "tokenizer.ggml.pre", &s) ? json_gstr(s) : json_null());
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens");
    json_object_set_new(tok, "vocab_size", toks ? json_integer((json_int_t)toks->arr.n) : json_null());
    for (size_t i = 0; i < Q_ARRAY_LEN(special_ids); i++) {
        uint64_t id;
        char k[32];
        snprintf(k, sizeof k, "%s_id", special_ids[i].label);
        if (gguf_get_u64(f, special_ids[i].key, &id)) json_object_set_new(tok, k, json_integer((json_int_t)id));
    }
    for (size_t i = 0; i < Q_ARRAY_LEN(tok_flags); i++) {
        bool b;
        if (gguf_get_bool(f, tok_flags[i].key, &b)) json_object_set_new(tok, tok_flags[i].label, json_boolean(b));
    }
    bool has_tmpl = gguf_get_str(f, "tokenizer.chat_template", &s);
    json_object_set_new(tok, "chat_template", json_pack("{s:b, s:I}", "present", has_tmpl, "length",
                                                        (json_int_t)(has_tmpl ? s.len : 0)));
    json_object_set_new(tok, "keys", json_keys(f, arch, KEY_TOKENIZER));
    json_object_set_new(o, "tokenizer", tok);
    json_object_set_new(o, "general", json_keys(f, arch, KEY_GENERAL));
    json_object_set_new(o, "other", json_keys(f, arch, KEY_OTHER));
    if (tensors) {
        json_t *arr = json_array();
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const gguf_tensor_info *t = &f->tensors[i];
            json_t *shape = json_array();
            for (uint32_t d = 0; d < t->n_dims; d++) json_array_append_new(shape, json_integer(t->ne[d]));
            json_array_append_new(arr, json_pack("{s:o, s:s, s:o, s:I, s:I}", "name", json_gstr(t->name), "type",
                                                 q_type_name(t->type), "shape", shape, "bytes", (json_int_t)t->nbytes,
                                                 "offset", (json_int_t)t->offset));
        }
        json_object_set_new(o, "tensors", arr);
    }
    return o;
}

static void info_usage(FILE *out) {
    fprintf(out, "usage: quarrel info MODEL.gguf [--json] [--tensors]\n"
                 "  --json     one JSON object instead of text\n"
                 "  --tensors  include the tensor table (name, type, shape, bytes, offset)\n");
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool as_json = false, tensors = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) as_json = true;
        else if (!strcmp(argv[i], "--tensors")) tensors = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { info_usage(stdout); return 0; }
        else if (argv[i][0] == '-' && argv[i][1]) { cli_errorf("info", "unknown option '%s'", argv[i]); info_usage(stderr); return 2; }
        else if (path) { cli_errorf("info", "more than one MODEL given"); return 2; }
        else path = argv[i];
    }
    if (!path) { info_usage(stderr); return 2; }
    gguf_file *f;
    q_error err;
    if (gguf_open(path, &f, &err) != Q_OK) {
        cli_errorf("info", "%s: %s", path, err.msg);
        return 1;
    }
    info_stats st;
    stats_compute(f, &st);
    if (as_json) {
        json_t *o = build_json(path, f, &st, tensors);
        if (json_out_of_memory) {
            json_decref(o);
            gguf_close(f);
            cli_errorf("info", "%s: out of memory rendering a string as JSON", path);
            return 1;
        }
        json_dumpf(o, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        print_text(stdout, path, f, &st, tensors);
    }
    gguf_close(f);
    return fflush(stdout) == 0 ? 0 : 1;
}
