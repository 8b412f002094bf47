/* The share scanner: file IDs, kept layers and SHA-256s match ones computed
 * another way, the cache spares unchanged files, changes are reported per
 * path, what must be skipped is skipped, and the worker delivers on the
 * loop thread and stops when told. Real files in a fresh temporary
 * directory per test, real SQLite. */
/* tsan: yes (the scanner's worker thread, under ThreadSanitizer) */
#define _XOPEN_SOURCE 700 /* nftw() */
#include "cunit_main.h"
#include "err.h"
#include "fileid.h"
#include "log.h"
#include "op_share.h"
#include "op_store.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CS OP_SHARE_KEEP_CHUNK /* 64 KiB: one hash of the kept layer */
#define RB OP_SHARE_READ_BYTES /* 1 MiB: what the scanner reads at once */

/* ---- fixture: <tmp>/share, <tmp>/peer.db, one store connection --------------------- */
static struct {
    char root[64];
    char share[96];
    char db[96];
    struct op_store *st;
    struct op_share_config cfg;
} env;

static void env_up(void)
{
    snprintf(env.root, sizeof(env.root), "/tmp/sova-share-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(env.root));
    snprintf(env.share, sizeof(env.share), "%s/share", env.root);
    snprintf(env.db, sizeof(env.db), "%s/%s", env.root, OP_STORE_FILENAME);
    CU_ASSERT_EQUAL_FATAL(mkdir(env.share, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(op_store_open(env.db, &env.st, NULL, 0), 0);
    env.cfg = (struct op_share_config){.share_root = env.share};
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void env_down(void)
{
    op_store_close(env.st);
    env.st = NULL;
    nftw(env.root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *in_share(const char *rel)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", env.share, rel);
    return path;
}

/* Deterministic content: every chunk differs, and so does every seed. */
static uint8_t *content(size_t size, unsigned seed)
{
    uint8_t *p = malloc(size ? size : 1);
    for (size_t i = 0; i < size; i++)
        p[i] = (uint8_t)(i * 131 + seed + (i >> 20) * 17);
    return p;
}

static void write_file(const char *rel, size_t size, unsigned seed)
{
    uint8_t *p = content(size, seed);
    FILE *f = fopen(in_share(rel), "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(p, 1, size, f), size);
    fclose(f);
    free(p);
}

/* Set the mtime seconds_ago into the past: old enough not to be racy. */
static void set_mtime(const char *rel, long seconds_ago)
{
    struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = time(NULL) - seconds_ago}};
    CU_ASSERT_EQUAL(utimensat(AT_FDCWD, in_share(rel), times, AT_SYMLINK_NOFOLLOW), 0);
}

static void make_dir(const char *rel)
{
    CU_ASSERT_EQUAL_FATAL(mkdir(in_share(rel), 0700), 0);
}

static struct op_share_result *scan(void)
{
    struct op_share_result *res = NULL;
    char err[256] = "";
    int rc = op_share_scan_once(env.st, &env.cfg, &res, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "scan: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    CU_ASSERT_EQUAL(res->status, 0);
    return res;
}

static const struct op_share_file *find(const struct op_share_result *res, const char *rel)
{
    for (size_t i = 0; i < res->n_files; i++)
        if (strcmp(res->files[i].relpath, rel) == 0)
            return &res->files[i];
    return NULL;
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[OP_HASH_LEN])
{
    CU_ASSERT_EQUAL_FATAL(EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL), 1);
}

/* ---- hashing -------------------------------------------------------------------------- */
/* The ID another way than the scanner's streaming hasher: the layer at the
 * kept height chunk by chunk (fileid_chunk_hash), its root, the ID. */
static void id_by_layer(const uint8_t *p, size_t size, uint8_t id[OP_HASH_LEN],
                        uint8_t (*layer)[FILEID_LEN], size_t *n)
{
    *n = 0;
    for (size_t off = 0; off < size; off += CS)
        fileid_chunk_hash(p + off, size - off < CS ? size - off : CS, OP_SHARE_KEEP_HEIGHT,
                          layer[(*n)++]);
    uint8_t root[FILEID_LEN];
    CU_ASSERT_EQUAL_FATAL(
        fileid_root_from_layer((const uint8_t(*)[FILEID_LEN])layer, *n, OP_SHARE_KEEP_HEIGHT, root),
        0);
    fileid_make(size, root, id);
}

static void test_ids_match_another_computation(void)
{
    static const size_t sizes[] = {0, 1, CS - 1, CS, CS + 1, 3 * CS + 5, RB + 17, 2 * RB};
    static const uint32_t layers[] = {0, 1, 1, 1, 2, 4, 17, 32};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    env_up();
    uint64_t total = 0;
    for (unsigned i = 0; i < N; i++) {
        char rel[32];
        snprintf(rel, sizeof(rel), "size%u.bin", i);
        write_file(rel, sizes[i], i);
        set_mtime(rel, 3600);
        total += sizes[i];
    }
    struct op_share_result *res = scan();
    CU_ASSERT_EQUAL(res->n_files, N);
    CU_ASSERT_EQUAL(res->n_added, N);
    CU_ASSERT_EQUAL(res->bytes_hashed, total);
    CU_ASSERT_EQUAL(res->files_hashed, N);
    static uint8_t layer[64][FILEID_LEN];
    for (unsigned i = 0; i < N; i++) {
        char rel[32];
        snprintf(rel, sizeof(rel), "size%u.bin", i);
        const struct op_share_file *f = find(res, rel);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_STRING_EQUAL(f->name, rel);
        CU_ASSERT_EQUAL(f->size, sizes[i]);
        CU_ASSERT_EQUAL_FATAL(f->n_layer, layers[i]);
        uint8_t *p = content(sizes[i], i), want[OP_HASH_LEN];
        size_t n;
        id_by_layer(p, sizes[i], want, layer, &n);
        CU_ASSERT_EQUAL(n, f->n_layer);
        CU_ASSERT_EQUAL(memcmp(f->id, want, OP_HASH_LEN), 0);
        CU_ASSERT(fileid_check(f->id, f->size, f->root));
        if (n > 0)
            CU_ASSERT_EQUAL(memcmp(f->layer, layer, n * OP_HASH_LEN), 0);
        CU_ASSERT(fileid_check_layer(f->id, f->size, (const uint8_t(*)[FILEID_LEN])f->layer,
                                     f->n_layer, OP_SHARE_KEEP_HEIGHT));
        sha256(p, sizes[i], want); /* what sha256sum prints */
        CU_ASSERT_EQUAL(memcmp(f->sha256, want, OP_HASH_LEN), 0);
        free(p);
        CU_ASSERT_PTR_EQUAL(op_share_result_lookup(res, f->id), f);
    }
    /* An empty file: no layer, the SHA-256 of nothing, and the ID of size
     * 0 (test_fileid's golden). */
    static const uint8_t empty_sha256[OP_HASH_LEN] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    static const uint8_t empty_id[OP_HASH_LEN] = {0xbc, 0x4f, 0xff, 0xa7, 0xc6, 0x6d, 0x55, 0x9a,
                                                  0xa7, 0x3f, 0x37, 0x4d, 0xcd, 0xc5, 0x92, 0xdf,
                                                  0x18, 0x6c, 0x66, 0x9c, 0x7f, 0xf4, 0x12, 0x36,
                                                  0x00, 0x4e, 0x2b, 0xd6, 0x93, 0x3b, 0xb6, 0x20};
    const struct op_share_file *empty = find(res, "size0.bin");
    CU_ASSERT_EQUAL(memcmp(empty->sha256, empty_sha256, OP_HASH_LEN), 0);
    CU_ASSERT_EQUAL(memcmp(empty->id, empty_id, OP_HASH_LEN), 0);
    CU_ASSERT_PTR_NULL(empty->layer);
    uint8_t unknown[OP_HASH_LEN] = {0};
    CU_ASSERT_PTR_NULL(op_share_result_lookup(res, unknown));
    /* A file's SHA-256 is not its ID: looking it up by one finds nothing. */
    CU_ASSERT_PTR_NULL(op_share_result_lookup(res, find(res, "size3.bin")->sha256));
    op_share_result_free(res);
    env_down();
}

/* ---- the cache and the change lists ----------------------------------------------------- */
static void test_second_scan_hashes_nothing(void)
{
    env_up();
    write_file("one.bin", CS + 3, 1);
    write_file("two.bin", 10, 2);
    set_mtime("one.bin", 3600);
    set_mtime("two.bin", 3600);
    struct op_share_result *first = scan(), *second = scan();
    CU_ASSERT_EQUAL(first->bytes_hashed, CS + 13);
    CU_ASSERT_EQUAL(second->bytes_hashed, 0);
    CU_ASSERT_EQUAL(second->files_hashed, 0);
    CU_ASSERT_EQUAL(second->n_added + second->n_changed + second->n_removed, 0);
    CU_ASSERT_EQUAL_FATAL(second->n_files, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct op_share_file *a = &first->files[i], *b = &second->files[i];
        CU_ASSERT_STRING_EQUAL(a->relpath, b->relpath);
        CU_ASSERT_EQUAL(memcmp(a->id, b->id, OP_HASH_LEN), 0);
        CU_ASSERT_EQUAL(memcmp(a->root, b->root, OP_HASH_LEN), 0);
        CU_ASSERT_EQUAL(memcmp(a->sha256, b->sha256, OP_HASH_LEN), 0);
        CU_ASSERT_EQUAL_FATAL(a->n_layer, b->n_layer);
        CU_ASSERT_EQUAL(memcmp(a->layer, b->layer, a->n_layer * OP_HASH_LEN), 0);
    }
    op_share_result_free(first);
    op_share_result_free(second);
    env_down();
}

static void test_changes_are_reported(void)
{
    env_up();
    make_dir("d");
    static const char *const names[] = {"grows.bin", "same-size.bin", "goes.bin", "d/stays.txt"};
    for (unsigned i = 0; i < 4; i++) {
        write_file(names[i], 1000 * (i + 1), i);
        set_mtime(names[i], 3600);
    }
    struct op_share_result *before = scan();
    write_file("grows.bin", 5000, 0); /* size changes */
    set_mtime("grows.bin", 3000);
    write_file("same-size.bin", 2000, 99); /* same size, new content, other mtime */
    set_mtime("same-size.bin", 3000);
    CU_ASSERT_EQUAL(unlink(in_share("goes.bin")), 0);
    write_file("d/new.txt", 7, 5);
    set_mtime("d/new.txt", 3000);

    struct op_share_result *after = scan();
    CU_ASSERT_EQUAL(after->n_files, 4);
    CU_ASSERT_EQUAL(after->bytes_hashed, 5000 + 2000 + 7);
    CU_ASSERT_EQUAL_FATAL(after->n_added, 1);
    CU_ASSERT_STRING_EQUAL(after->added[0]->relpath, "d/new.txt");
    CU_ASSERT_STRING_EQUAL(after->added[0]->name, "new.txt");
    CU_ASSERT_EQUAL_FATAL(after->n_removed, 1);
    CU_ASSERT_STRING_EQUAL(after->removed[0].relpath, "goes.bin");
    CU_ASSERT_EQUAL(after->removed[0].size, 3000);
    CU_ASSERT_EQUAL(memcmp(after->removed[0].id, find(before, "goes.bin")->id, OP_HASH_LEN), 0);
    CU_ASSERT_EQUAL_FATAL(after->n_changed, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct op_share_change *ch = &after->changed[i];
        const struct op_share_file *old = find(before, ch->now->relpath);
        CU_ASSERT_PTR_NOT_NULL_FATAL(old);
        CU_ASSERT_STRING_EQUAL(ch->before.relpath, old->relpath);
        CU_ASSERT_EQUAL(memcmp(ch->before.id, old->id, OP_HASH_LEN), 0);
        CU_ASSERT_NOT_EQUAL(memcmp(ch->now->id, old->id, OP_HASH_LEN), 0);
        CU_ASSERT_PTR_EQUAL(ch->now, find(after, ch->now->relpath));
    }
    CU_ASSERT_EQUAL(find(after, "grows.bin")->size, 5000);
    /* The removed file is gone from the store too. */
    struct op_share_result *again = scan();
    CU_ASSERT_EQUAL(again->bytes_hashed, 0);
    CU_ASSERT_EQUAL(again->n_removed + again->n_added + again->n_changed, 0);
    op_share_result_free(before);
    op_share_result_free(after);
    op_share_result_free(again);
    env_down();
}

static void test_touched_file_is_rehashed_but_unchanged(void)
{
    env_up();
    write_file("f.bin", 4096, 1);
    set_mtime("f.bin", 3600);
    op_share_result_free(scan());
    set_mtime("f.bin", 1800); /* same bytes, new mtime */
    struct op_share_result *res = scan();
    CU_ASSERT_EQUAL(res->bytes_hashed, 4096);
    CU_ASSERT_EQUAL(res->n_changed + res->n_added + res->n_removed, 0);
    op_share_result_free(res);
    env_down();
}

static void test_racy_file_is_not_trusted(void)
{
    env_up();
    write_file("fresh.bin", 100, 1); /* mtime: now */
    op_share_result_free(scan());
    struct op_share_result *res = scan(); /* its mtime cannot vouch for it yet */
    CU_ASSERT_EQUAL(res->bytes_hashed, 100);
    CU_ASSERT_EQUAL(res->n_changed + res->n_added + res->n_removed, 0);
    op_share_result_free(res);
    set_mtime("fresh.bin", 3600);
    op_share_result_free(scan());
    res = scan();
    CU_ASSERT_EQUAL(res->bytes_hashed, 0);
    op_share_result_free(res);
    env_down();
}

/* ---- what is shared ---------------------------------------------------------------------- */
static void test_skips_hidden_links_special_and_excluded(void)
{
    env_up();
    write_file("visible.txt", 10, 1);
    write_file(".hidden", 10, 2);
    make_dir(".git");
    write_file(".git/config", 10, 3);
    make_dir("a");
    make_dir("a/b");
    make_dir("a/b/c");
    write_file("a/b/c/deep.txt", 20, 4);
    write_file("a/b/c/visible.txt", 10, 1); /* same content, other path */
    make_dir("incoming");
    write_file("incoming/part.bin", 10, 5);
    write_file("bad\\name.txt", 10, 6);
    write_file("\xff\xfe.bin", 10, 7);
    char outside[128];
    snprintf(outside, sizeof(outside), "%s/outside", env.root);
    CU_ASSERT_EQUAL_FATAL(mkdir(outside, 0700), 0);
    CU_ASSERT_EQUAL(symlink("visible.txt", in_share("link-in")), 0);
    CU_ASSERT_EQUAL(symlink(outside, in_share("link-out")), 0);
    CU_ASSERT_EQUAL(mkfifo(in_share("fifo"), 0600), 0);
    char excluded[128];
    snprintf(excluded, sizeof(excluded), "%s/incoming", env.share);
    const char *excludes[] = {excluded};
    env.cfg.exclude_dirs = excludes;
    env.cfg.n_exclude_dirs = 1;

    struct op_share_result *res = scan();
    CU_ASSERT_EQUAL(res->n_files, 3);
    CU_ASSERT_EQUAL(res->files_skipped, 2); /* the two unpublishable names */
    const struct op_share_file *deep = find(res, "a/b/c/deep.txt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(deep);
    CU_ASSERT_STRING_EQUAL(deep->name, "deep.txt");
    CU_ASSERT_PTR_NOT_NULL(find(res, "visible.txt"));
    const struct op_share_file *dup = find(res, "a/b/c/visible.txt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(dup);
    CU_ASSERT_STRING_EQUAL(dup->name, "visible.txt");
    CU_ASSERT_PTR_EQUAL(op_share_result_lookup(res, dup->id), dup);  /* first by relpath */
    CU_ASSERT_STRING_EQUAL(res->files[0].relpath, "a/b/c/deep.txt"); /* sorted */
    op_share_result_free(res);
    env_down();
}

static void test_missing_root_is_an_error(void)
{
    env_up();
    env.cfg.share_root = "/nonexistent/sova/share";
    struct op_share_result *res = (struct op_share_result *)1;
    char err[256] = "";
    CU_ASSERT_EQUAL(op_share_scan_once(env.st, &env.cfg, &res, err, sizeof(err)), SOVA_ERR_IO);
    CU_ASSERT_PTR_NULL(res);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot open share root"));
    env_down();
}

/* ---- several folders, .sovaignore, a missing folder ----------------------------------- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_sovaignore(void)
{
    env_up();
    make_dir("build");
    make_dir("sub");
    make_dir("sub/build");
    make_dir("private");
    make_dir("sub/private");
    make_dir("drafts");
    static const char *const kept[] = {"keep.txt", "sub/private/p.txt", "drafts/x.txt",
                                       "sub/build.txt", "sub/b.tmp.txt"};
    static const char *const ignored[] = {"a.tmp",           "sub/b.tmp",     "build/c.txt",
                                          "sub/build/d.txt", "private/e.txt", "drafts/f.doc"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        write_file(kept[i], 10, (unsigned)i);
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        write_file(ignored[i], 10, (unsigned)(100 + i));
    write_text(in_share(OP_SHARE_IGNORE_FILE), "# comment\n\n  *.tmp  \n/private\nbuild/\n"
                                               "drafts/*.doc\r\n/\n");
    struct op_share_result *res = scan();
    CU_ASSERT_EQUAL(res->n_files, sizeof(kept) / sizeof(kept[0]));
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        CU_ASSERT_PTR_NOT_NULL(find(res, kept[i]));
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        CU_ASSERT_PTR_NULL(find(res, ignored[i]));
    CU_ASSERT_EQUAL(res->n_folders, 1);
    CU_ASSERT_EQUAL(res->folders[0].n_patterns, 4);
    CU_ASSERT_EQUAL(res->folders[0].n_ignored, 6); /* 2 files, 3 folders, 1 .doc */
    op_share_result_free(res);
    env_down();
}

static void test_several_folders_and_a_missing_one(void)
{
    env_up();
    char second[160], gone[160];
    snprintf(second, sizeof(second), "%s/second", env.root);
    snprintf(gone, sizeof(gone), "%s/gone", env.root);
    CU_ASSERT_EQUAL_FATAL(mkdir(second, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(gone, 0700), 0);
    write_file("same.txt", 100, 1);
    char path[256];
    snprintf(path, sizeof(path), "%s/same.txt", second); /* the same relative path */
    write_text(path, "other");
    snprintf(path, sizeof(path), "%s/g.txt", gone);
    write_text(path, "gone soon");
    const char *folders[] = {env.share, second, gone};
    env.cfg = (struct op_share_config){.folders = folders, .n_folders = 3, .missing_ok = true};
    struct op_share_result *res = scan();
    CU_ASSERT_EQUAL(res->n_files, 3);
    CU_ASSERT_EQUAL(res->n_folders, 3);
    for (size_t i = 0; i < res->n_files; i++) {
        const struct op_share_file *f = &res->files[i];
        CU_ASSERT_TRUE(f->folder < 3);
        snprintf(path, sizeof(path), "%s/%s", folders[f->folder], f->relpath);
        CU_ASSERT_STRING_EQUAL(f->path, path);
    }
    CU_ASSERT_EQUAL(res->folders[1].n_files, 1);
    CU_ASSERT_EQUAL(res->folders[1].bytes, 5);
    op_share_result_free(res);

    /* The third folder goes: reported missing, its file removed, the others scanned. */
    snprintf(path, sizeof(path), "%s/g.txt", gone);
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(rmdir(gone), 0);
    res = scan();
    CU_ASSERT_EQUAL(res->n_files, 2);
    CU_ASSERT_TRUE(res->folders[2].missing);
    CU_ASSERT_PTR_NOT_NULL(strstr(res->folders[2].error, "No such file"));
    CU_ASSERT_FALSE(res->folders[0].missing);
    CU_ASSERT_EQUAL(res->n_removed, 1);
    CU_ASSERT_EQUAL(res->n_removed ? res->removed[0].folder : 99, 2);
    op_share_result_free(res);

    /* Without missing_ok, a folder that cannot be opened fails the scan. */
    env.cfg.missing_ok = false;
    struct op_share_result *failed = (struct op_share_result *)1;
    char err[256] = "";
    CU_ASSERT_EQUAL(op_share_scan_once(env.st, &env.cfg, &failed, err, sizeof(err)), SOVA_ERR_IO);
    CU_ASSERT_PTR_NULL(failed);

    /* No folder at all: every file of the store is removed. */
    env.cfg = (struct op_share_config){.n_folders = 0};
    res = scan();
    CU_ASSERT_EQUAL(res->n_files, 0);
    CU_ASSERT_EQUAL(res->n_folders, 0);
    CU_ASSERT_EQUAL(res->n_removed, 3); /* the store still had the missing folder's row */
    op_share_result_free(res);
    env_down();
}

/* Out of descriptors (a flood of connections can do it to a peer), a scan
 * fails and says why; it does not count what it could not open as removed,
 * and the next scan finds every file as it was. */
static void test_short_of_descriptors_removes_nothing(void)
{
    env_up();
    make_dir("sub");
    write_file("top.bin", 1000, 1);
    write_file("sub/deep.bin", 1000, 2);
    const char *folders[] = {env.share};
    env.cfg = (struct op_share_config){.folders = folders, .n_folders = 1, .missing_ok = true};
    struct op_share_result *res = scan();
    CU_ASSERT_EQUAL(res->n_files, 2);
    op_share_result_free(res);
    write_file("new.bin", 1000, 3); /* so the scan has a file to open, too */

    /* A low soft limit, then every descriptor under it taken. */
    struct rlimit was, low;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &was), 0);
    low = was;
    low.rlim_cur = 256;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fds[256];
    size_t n = 0;
    while (n < sizeof(fds) / sizeof(fds[0]) && (fds[n] = dup(0)) >= 0)
        n++;
    int dup_errno = errno;
    struct op_share_result *failed = (struct op_share_result *)1;
    char err[256] = "";
    int rc = op_share_scan_once(env.st, &env.cfg, &failed, err, sizeof(err));
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_NOFILE, &was), 0);
    CU_ASSERT_EQUAL(dup_errno, EMFILE);
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NULL(failed);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "Too many open files"));

    res = scan();
    CU_ASSERT_EQUAL(res->n_files, 3);
    CU_ASSERT_EQUAL(res->n_removed, 0);
    CU_ASSERT_EQUAL(res->n_added, 1);
    CU_ASSERT_FALSE(res->folders[0].missing);
    op_share_result_free(res);
    env_down();
}

/* A .sovaignore that is there but cannot be read fails the scan: sharing
 * the files it hides would be worse than not scanning. */
static void test_unreadable_sovaignore_fails_the_scan(void)
{
    env_up();
    write_file("keep.txt", 10, 1);
    write_file("secret.key", 10, 2);
    write_text(in_share(OP_SHARE_IGNORE_FILE), "*.key\n");
    struct op_share_result *res = scan();
    CU_ASSERT_EQUAL(res->n_files, 1);
    op_share_result_free(res);
    CU_ASSERT_EQUAL_FATAL(unlink(in_share(OP_SHARE_IGNORE_FILE)), 0);
    make_dir(OP_SHARE_IGNORE_FILE); /* opens, but reading it fails (EISDIR) */
    struct op_share_result *failed = (struct op_share_result *)1;
    char err[256] = "";
    CU_ASSERT_EQUAL(op_share_scan_once(env.st, &env.cfg, &failed, err, sizeof(err)), SOVA_ERR_IO);
    CU_ASSERT_PTR_NULL(failed);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, OP_SHARE_IGNORE_FILE));
    env_down();
}

/* ---- the worker ----------------------------------------------------------------------------- */
#define WAIT_LIMIT_S 60 /* a hung test fails instead of blocking ctest */

struct waiter {
    struct event_base *base;
    int calls;
    bool on_loop_thread;
    pthread_t loop_thread;
    int status;
    size_t n_files, n_added, n_changed, n_removed;
    uint64_t bytes_hashed;
    bool timed_out;
};

static void on_done(const struct op_share_result *res, void *arg)
{
    struct waiter *w = arg;
    w->calls++;
    w->on_loop_thread = pthread_equal(pthread_self(), w->loop_thread) != 0;
    w->status = res->status;
    w->n_files = res->n_files;
    w->n_added = res->n_added;
    w->n_changed = res->n_changed;
    w->n_removed = res->n_removed;
    w->bytes_hashed = res->bytes_hashed;
    event_base_loopbreak(w->base);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct waiter *w = arg;
    w->timed_out = true;
    event_base_loopbreak(w->base);
}

/* Run the loop until the share is idle (every requested scan delivered). */
static void run_until_idle(struct waiter *w, struct op_share *sh)
{
    struct event *timer = evtimer_new(w->base, on_timeout, w);
    struct timeval tv = {WAIT_LIMIT_S, 0};
    evtimer_add(timer, &tv);
    while (op_share_busy(sh) && !w->timed_out)
        event_base_loop(w->base, EVLOOP_ONCE);
    event_free(timer);
    CU_ASSERT_FALSE(w->timed_out);
}

static struct op_share *new_share(struct waiter *w)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    w->loop_thread = pthread_self();
    struct op_share *sh = NULL;
    char err[256] = "";
    int rc = op_share_new(w->base, &env.cfg, env.db, on_done, w, &sh, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "op_share_new: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_FALSE(op_share_busy(sh));
    CU_ASSERT_PTR_NULL(op_share_current(sh));
    return sh;
}

static void free_share(struct waiter *w, struct op_share *sh)
{
    op_share_free(sh);
    event_base_free(w->base);
}

static void test_worker_delivers_on_the_loop_thread(void)
{
    env_up();
    write_file("movie.bin", 2 * CS + 1, 1);
    set_mtime("movie.bin", 3600);
    struct waiter w;
    struct op_share *sh = new_share(&w);
    op_share_rescan(sh);
    CU_ASSERT_TRUE(op_share_busy(sh));
    run_until_idle(&w, sh);
    CU_ASSERT_EQUAL(w.calls, 1);
    CU_ASSERT_TRUE(w.on_loop_thread);
    CU_ASSERT_EQUAL(w.status, 0);
    CU_ASSERT_EQUAL(w.n_files, 1);
    CU_ASSERT_EQUAL(w.n_added, 1);
    CU_ASSERT_EQUAL(w.bytes_hashed, 2 * CS + 1);

    /* Serving: ID -> file -> path, and the freshness check. */
    const struct op_share_result *cur = op_share_current(sh);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
    const struct op_share_file *f = op_share_lookup(sh, cur->files[0].id);
    CU_ASSERT_PTR_EQUAL_FATAL(f, &cur->files[0]);
    CU_ASSERT_EQUAL(f->n_layer, 3);
    char path[256];
    CU_ASSERT_EQUAL(op_share_abspath(sh, f, path, sizeof(path)), 0);
    CU_ASSERT_STRING_EQUAL(path, in_share("movie.bin"));
    char tiny[8];
    CU_ASSERT_EQUAL(op_share_abspath(sh, f, tiny, sizeof(tiny)), SOVA_ERR_INVALID);
    int fd = open(path, O_RDONLY);
    CU_ASSERT_TRUE(op_share_file_unchanged(f, fd));
    int wfd = open(path, O_WRONLY | O_APPEND);
    CU_ASSERT_EQUAL(write(wfd, "x", 1), 1);
    close(wfd);
    CU_ASSERT_FALSE(op_share_file_unchanged(f, fd)); /* never serve stale hashes */
    close(fd);

    /* The next scan sees the change. */
    set_mtime("movie.bin", 1800);
    op_share_rescan(sh);
    run_until_idle(&w, sh);
    CU_ASSERT_EQUAL(w.calls, 2);
    CU_ASSERT_TRUE(w.on_loop_thread);
    CU_ASSERT_EQUAL(w.n_changed, 1);
    CU_ASSERT_EQUAL(op_share_current(sh)->files[0].size, 2 * CS + 2);
    free_share(&w, sh);
    env_down();
}

static void test_rescans_are_coalesced(void)
{
    env_up();
    write_file("f.bin", 3 * CS, 1);
    set_mtime("f.bin", 3600);
    struct waiter w;
    struct op_share *sh = new_share(&w);
    for (int i = 0; i < 5; i++)
        op_share_rescan(sh);
    run_until_idle(&w, sh);
    /* The first request may start a scan at once; the rest make one more. */
    CU_ASSERT_TRUE(w.calls >= 1 && w.calls <= 2);
    CU_ASSERT_EQUAL(w.status, 0);
    CU_ASSERT_EQUAL(w.n_files, 1);
    free_share(&w, sh);
    env_down();
}

static void test_worker_reports_errors_and_keeps_the_last_result(void)
{
    env_up();
    write_file("f.bin", 10, 1);
    set_mtime("f.bin", 3600);
    char moved[128];
    snprintf(moved, sizeof(moved), "%s/moved", env.root);
    struct waiter w;
    struct op_share *sh = new_share(&w);
    op_share_rescan(sh);
    run_until_idle(&w, sh);
    const struct op_share_result *good = op_share_current(sh);
    CU_ASSERT_PTR_NOT_NULL_FATAL(good);
    CU_ASSERT_EQUAL(rename(env.share, moved), 0); /* the root disappears */
    op_share_rescan(sh);
    run_until_idle(&w, sh);
    CU_ASSERT_EQUAL(w.calls, 2);
    CU_ASSERT_EQUAL(w.status, SOVA_ERR_IO);
    CU_ASSERT_PTR_EQUAL(op_share_current(sh), good); /* still serving the last good scan */
    CU_ASSERT_PTR_NOT_NULL(op_share_lookup(sh, good->files[0].id));
    CU_ASSERT_EQUAL(rename(moved, env.share), 0);
    free_share(&w, sh);
    env_down();
}

static void test_restart_does_not_rehash(void)
{
    env_up();
    write_file("a.bin", CS + 1, 1);
    write_file("b.bin", 5, 2);
    set_mtime("a.bin", 3600);
    set_mtime("b.bin", 3600);
    op_share_result_free(scan());
    /* A new connection (a restarted daemon) ... */
    op_store_close(env.st);
    CU_ASSERT_EQUAL_FATAL(op_store_open(env.db, &env.st, NULL, 0), 0);
    struct op_share_result *res = scan();
    CU_ASSERT_EQUAL(res->bytes_hashed, 0);
    CU_ASSERT_EQUAL(res->n_added + res->n_changed + res->n_removed, 0);
    op_share_result_free(res);
    /* ... and a new worker on the same database. */
    struct waiter w;
    struct op_share *sh = new_share(&w);
    op_share_rescan(sh);
    run_until_idle(&w, sh);
    CU_ASSERT_EQUAL(w.status, 0);
    CU_ASSERT_EQUAL(w.n_files, 2);
    CU_ASSERT_EQUAL(w.bytes_hashed, 0);
    CU_ASSERT_EQUAL(w.n_added + w.n_changed + w.n_removed, 0);
    free_share(&w, sh);
    env_down();
}

/* Bytes this process has read so far (all threads), or -1. */
static long long bytes_read(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    long long v = -1;
    char line[128];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "rchar: %lld", &v) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_free_cancels_a_long_hash(void)
{
    env_up();
    /* 16 GiB of holes: hashing it takes many seconds. */
    int fd = open(in_share("huge.bin"), O_WRONLY | O_CREAT, 0600);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 16LL << 30), 0);
    close(fd);
    struct waiter w;
    struct op_share *sh = new_share(&w);
    long long start = bytes_read();
    op_share_rescan(sh);
    /* Wait until the worker is well into the file. */
    double deadline = now_s() + WAIT_LIMIT_S;
    struct timespec poll = {0, 1000000};
    while (start >= 0 && bytes_read() < start + 8 * (long long)RB && now_s() < deadline)
        nanosleep(&poll, NULL);
    double t0 = now_s();
    op_share_free(sh);
    double took = now_s() - t0;
    CU_ASSERT_TRUE(took < 2.0);
    if (took >= 2.0)
        fprintf(stderr, "op_share_free took %.1f s\n", took);
    CU_ASSERT_EQUAL(w.calls, 0); /* a cancelled scan is never delivered */
    event_base_free(w.base);
    env_down();
}

static void test_new_refuses_a_newer_database(void)
{
    env_up();
    sqlite3 *db;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(env.db, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct event_base *base = event_base_new();
    struct op_share *sh = (struct op_share *)1;
    char err[256] = "";
    CU_ASSERT_EQUAL(op_share_new(base, &env.cfg, env.db, on_done, NULL, &sh, err, sizeof(err)),
                    SOVA_ERR_VERSION);
    CU_ASSERT_PTR_NULL(sh);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "newer"));
    event_base_free(base);
    env_down();
}

int test_register(void)
{
    sova_log_set_level(SOVA_LOG_WARN); /* one info line per scan is noise here */
    CU_pSuite s = CU_add_suite("op_share", NULL, NULL);
    if (s == NULL)
        return -1;
    CU_add_test(s, "IDs, layers and SHA-256s match another computation",
                test_ids_match_another_computation);
    CU_add_test(s, "second scan hashes nothing", test_second_scan_hashes_nothing);
    CU_add_test(s, "changes are reported", test_changes_are_reported);
    CU_add_test(s, "touched file is rehashed but unchanged",
                test_touched_file_is_rehashed_but_unchanged);
    CU_add_test(s, "racy file is not trusted", test_racy_file_is_not_trusted);
    CU_add_test(s, "skips hidden, links, special and excluded",
                test_skips_hidden_links_special_and_excluded);
    CU_add_test(s, "missing root is an error", test_missing_root_is_an_error);
    CU_add_test(s, ".sovaignore", test_sovaignore);
    CU_add_test(s, "several folders and a missing one", test_several_folders_and_a_missing_one);
    CU_add_test(s, "short of descriptors removes nothing",
                test_short_of_descriptors_removes_nothing);
    CU_add_test(s, "unreadable .sovaignore fails the scan",
                test_unreadable_sovaignore_fails_the_scan);
    CU_add_test(s, "worker delivers on the loop thread", test_worker_delivers_on_the_loop_thread);
    CU_add_test(s, "rescans are coalesced", test_rescans_are_coalesced);
    CU_add_test(s, "worker reports errors and keeps the last result",
                test_worker_reports_errors_and_keeps_the_last_result);
    CU_add_test(s, "restart does not rehash", test_restart_does_not_rehash);
    CU_add_test(s, "free cancels a long hash", test_free_cancels_a_long_hash);
    CU_add_test(s, "new refuses a newer database", test_new_refuses_a_newer_database);
    return CU_get_error() == CUE_SUCCESS ? 0 : -1;
}
