/* tokenizer_bpe.h - byte-level BPE as in GPT-2/CLIP: a string -> int hash map
 * (for vocab.json and the symbol table), merges.txt ranks, and the merge loop
 * of CLIPTokenizer.bpe. Knows nothing about text normalisation. */
#ifndef SDC_TEXT_TOKENIZER_BPE_H
#define SDC_TEXT_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* --- string -> int32 map (open addressing, owns copies of the keys) -------- */
typedef struct tok_arena_block tok_arena_block;
typedef struct {
    char **keys;     /* (cap) NULL = empty slot; each key NUL-terminated, in `arena` */
    uint32_t *lens;  /* (cap) key lengths */
    uint32_t *hash;  /* (cap) low bits of the key hash */
    int32_t *vals;   /* (cap) */
    size_t cap, n;   /* cap is a power of two, kept >= 2n */
    tok_arena_block *arena; /* key storage, freed all at once */
} tok_strmap;

sdc_status tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m);
/* Insert or overwrite (Python dict assignment: the last value wins). When
 * `stored` is not NULL it gets the map's own copy of the key, which stays valid
 * until tok_strmap_free. */
sdc_status tok_strmap_put(tok_strmap *m, const char *s, size_t len, int32_t val, const char **stored);
/* 1 and *val when present, else 0. */
int tok_strmap_get(const tok_strmap *m, const char *s, size_t len, int32_t *val);

/* --- BPE model --------------------------------------------------------------- */
typedef struct {
    tok_strmap sym;       /* symbol string -> sid */
    const char **sym_str; /* (nsym) sid -> symbol string (the copy owned by `sym`) */
    int32_t nsym, capsym;
    uint64_t *pair_key;   /* (pcap) (sidA << 32 | sidB) + 1, 0 = empty */
    int32_t *pair_rank;   /* (pcap) merge rank (line index, 0-based) */
    int32_t *pair_res;    /* (pcap) sid of the merged symbol */
    size_t pcap, npair;
    int32_t byte_sid[256];   /* sid of the single byte-char symbol */
    int32_t byte_w_sid[256]; /* sid of byte-char + "</w>" */
    char byte_chr[256][3];   /* GPT-2 bytes_to_unicode: byte -> UTF-8 of its char */
    int32_t nmerges;
} tok_bpe;

/* Read merges.txt like CLIPTokenizer: text.strip().split("\n")[1 : max_lines]
 * (the first line is the "#version" header). Lines must hold two symbols
 * (blank lines are skipped); anything else is SDC_ERR_FORMAT naming the line. */
sdc_status tok_bpe_load(tok_bpe *m, const char *merges_path, int max_lines);
void tok_bpe_free(tok_bpe *m);
/* sid of a symbol string, adding it when new. */
sdc_status tok_bpe_intern(tok_bpe *m, const char *s, size_t len, int32_t *sid);

/* CLIPTokenizer.bpe on the UTF-8 bytes of one regex piece (n >= 1): the
 * symbols are its byte-chars with "</w>" on the last; merged by rank until no
 * ranked pair is left. Writes sids to out (capacity n), *k gets how many.
 * O(n log n) time and O(n) memory for any word (a piece can be a whole 1 MB
 * prompt of letters); SDC_ERR_NOMEM is its only failure. */
sdc_status tok_bpe_word(const tok_bpe *m, const unsigned char *bytes, size_t n, int32_t *out, size_t *k);
/* The same by the reference's own loop (O(n^2)): what tok_bpe_word uses for
 * short words, and what tests compare it with. */
size_t tok_bpe_word_simple(const tok_bpe *m, const unsigned char *bytes, size_t n, int32_t *out);

#endif
