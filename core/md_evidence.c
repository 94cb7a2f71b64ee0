/*
 * Evidence at rest (md_evidence.h).  On disk, under dir:
 *
 *   keys/<session>.key            "MDEVKEY1" | nonce(12) | AES-256-GCM(master, data key)(32) |
 * tag(16) AAD = "MDEVKEY1" | session sessions/<session>/<file>.ev  "MDEVFIL1" | prefix(8) | chunk*
 * ; chunk = ct | tag(16) nonce = prefix | u32 counter, AAD = "MDEVFIL1" | prefix | session | 0 |
 * file | 0 | u64 index | final(1) every chunk but the last holds exactly 64 KiB
 *   sessions/<session>/transcript "MDEVCHT1" | record* ; record = u32 len | nonce(12) | ct | tag
 *                                 AAD = "MDEVCHT1" | session | 0 | u64 seq
 *
 * All integers big-endian.  Only crypto through md_crypto (AES-256-GCM,
 * SHA-256, random).  Keys are cached per session under ev->lock and wiped
 * on free.  Library layer: logs at debug only.
 */
#include "md_evidence.h"
#include "md_bytes.h"
#include "md_durable.h"
#include "md_err.h"
#include "md_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_MAGIC "MDEVKEY1"
#define FILE_MAGIC "MDEVFIL1"
#define CHAT_MAGIC "MDEVCHT1"
#define MAGIC_LEN 8
#define PREFIX_LEN 8
#define KEY_FILE_LEN (MAGIC_LEN + MD_AEAD_NONCE_LEN + MD_AEAD_KEY_LEN + MD_AEAD_TAG_LEN)
#define ID_MAX 64
#define AAD_MAX (MAGIC_LEN + PREFIX_LEN + 2 * (ID_MAX + 1) + 8 + 1)

struct session_key {
    uint8_t key[MD_AEAD_KEY_LEN];
    int64_t next_seq; /* transcript; -1 until counted */
};

struct md_evidence {
    char *dir, *keys_dir, *sessions_dir;
    uint8_t master[MD_AEAD_KEY_LEN];
    GMutex lock;
    GHashTable *keys; /* session id -> struct session_key, wiped on removal */
};

struct md_evidence_file {
    md_evidence *ev;
    char *tmp_path, *final_path, *session_dir;
    int fd;
    uint8_t key[MD_AEAD_KEY_LEN];
    uint8_t aad[AAD_MAX];
    size_t aad_len; /* up to and excluding index and final flag */
    uint8_t prefix[PREFIX_LEN];
    uint8_t *plain, *sealed;
    size_t plain_len;
    uint64_t index;
    md_sha256_ctx *hash;
    int failed;
};

static bool id_ok(const char *id)
{
    size_t len = id ? strnlen(id, ID_MAX + 1) : 0;
    if (len == 0 || len > ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!g_ascii_isalnum(id[i]) && id[i] != '_' && id[i] != '-')
            return false;
    return true;
}

static void free_session_key(gpointer p)
{
    md_wipe(p, sizeof(struct session_key));
    g_free(p);
}

/* ---- files ------------------------------------------------------------------ */

static int write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads up to len bytes; fewer only at end of file. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static int mkdir_private(const char *path)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* ---- master key ------------------------------------------------------------- */

static int load_master(const char *path, uint8_t out[MD_AEAD_KEY_LEN])
{
    uint8_t buf[MD_AEAD_KEY_LEN + 1];
    struct stat st;
    int r = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0 && errno == ENOENT) {
        /* First start: a fresh key, 0600, never overwriting one. */
        uint8_t key[MD_AEAD_KEY_LEN];
        if ((r = md_random_bytes(key, sizeof(key))) < 0)
            return r;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            md_wipe(key, sizeof(key));
            return -errno;
        }
        r = write_full(fd, key, sizeof(key));
        if (r == 0 && fsync(fd) < 0)
            r = -errno;
        close(fd);
        if (r == 0)
            memcpy(out, key, sizeof(key));
        else
            unlink(path);
        md_wipe(key, sizeof(key));
        return r;
    }
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        md_debug("evidence", "master_key_refused", "{s:s, s:i}", "reason",
                 S_ISREG(st.st_mode) ? "mode" : "not a file", "mode", (int)(st.st_mode & 0777));
        r = -MD_E_EVIDENCE_KEY;
        goto out;
    }
    ssize_t n = read_full(fd, buf, sizeof(buf));
    if (n != MD_AEAD_KEY_LEN) {
        r = n < 0 ? (int)n : -MD_E_EVIDENCE_KEY;
        goto out;
    }
    memcpy(out, buf, MD_AEAD_KEY_LEN);
out:
    md_wipe(buf, sizeof(buf));
    close(fd);
    return r;
}

#define FIELD_KEY_LABEL "madoguchi field key v1"

static int derive_field_key(const uint8_t master[MD_AEAD_KEY_LEN], uint8_t ret[MD_AEAD_KEY_LEN])
{
    uint8_t mac[MD_HMAC_MAX_LEN];
    size_t len = 0;
    int r = md_hmac("SHA256", master, MD_AEAD_KEY_LEN, FIELD_KEY_LABEL, strlen(FIELD_KEY_LABEL),
                    mac, &len);
    if (r == 0 && len != MD_AEAD_KEY_LEN)
        r = -MD_E_CRYPTO;
    if (r == 0)
        memcpy(ret, mac, MD_AEAD_KEY_LEN);
    md_wipe(mac, sizeof(mac));
    return r;
}

int md_evidence_field_key(const md_evidence *ev, uint8_t ret[MD_AEAD_KEY_LEN])
{
    if (!ev || !ret)
        return -EINVAL;
    return derive_field_key(ev->master, ret);
}

int md_evidence_field_key_from_file(const char *master_key_path, uint8_t ret[MD_AEAD_KEY_LEN])
{
    uint8_t master[MD_AEAD_KEY_LEN];
    struct stat sb;
    if (!master_key_path || !ret)
        return -EINVAL;
    if (stat(master_key_path, &sb) < 0) /* load_master would create it */
        return -errno;
    int r = load_master(master_key_path, master);
    if (r == 0)
        r = derive_field_key(master, ret);
    md_wipe(master, sizeof(master));
    return r;
}

int md_evidence_open(const char *dir, const char *master_key_path, md_evidence **ret)
{
    md_evidence *ev;
    int r;

    if (!dir || !master_key_path || !ret)
        return -EINVAL;
    ev = g_new0(md_evidence, 1);
    g_mutex_init(&ev->lock);
    ev->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, free_session_key);
    ev->dir = g_strdup(dir);
    ev->keys_dir = g_build_filename(dir, "keys", NULL);
    ev->sessions_dir = g_build_filename(dir, "sessions", NULL);
    if ((r = mkdir_private(ev->dir)) < 0 || (r = mkdir_private(ev->keys_dir)) < 0 ||
        (r = mkdir_private(ev->sessions_dir)) < 0)
        goto fail;
    if ((r = load_master(master_key_path, ev->master)) < 0)
        goto fail;
    *ret = ev;
    return 0;
fail:
    md_evidence_free(ev);
    return r;
}

const char *md_evidence_dir(const md_evidence *ev)
{
    return ev->dir;
}

md_evidence *md_evidence_free(md_evidence *ev)
{
    if (!ev)
        return NULL;
    g_hash_table_destroy(ev->keys);
    g_mutex_clear(&ev->lock);
    md_wipe(ev->master, sizeof(ev->master));
    g_free(ev->dir);
    g_free(ev->keys_dir);
    g_free(ev->sessions_dir);
    g_free(ev);
    return NULL;
}

/* ---- session keys ----------------------------------------------------------- */

static char *key_path(const md_evidence *ev, const char *session_id)
{
    char *name = g_strconcat(session_id, ".key", NULL);
    char *path = g_build_filename(ev->keys_dir, name, NULL);
    g_free(name);
    return path;
}

static size_t key_aad(const char *session_id, uint8_t *aad)
{
    size_t n = strlen(session_id);
    memcpy(aad, KEY_MAGIC, MAGIC_LEN);
    memcpy(aad + MAGIC_LEN, session_id, n);
    return MAGIC_LEN + n;
}

static int unwrap_key(const md_evidence *ev, const char *session_id, const uint8_t *file,
                      size_t len, uint8_t out[MD_AEAD_KEY_LEN])
{
    uint8_t aad[MAGIC_LEN + ID_MAX];
    if (len != KEY_FILE_LEN || memcmp(file, KEY_MAGIC, MAGIC_LEN) != 0)
        return -MD_E_EVIDENCE_KEY;
    if (md_aead_open(ev->master, file + MAGIC_LEN, aad, key_aad(session_id, aad),
                     file + MAGIC_LEN + MD_AEAD_NONCE_LEN, MD_AEAD_KEY_LEN + MD_AEAD_TAG_LEN,
                     out) < 0)
        return -MD_E_EVIDENCE_KEY;
    return 0;
}

static int create_key(md_evidence *ev, const char *session_id, const char *path,
                      uint8_t out[MD_AEAD_KEY_LEN])
{
    uint8_t file[KEY_FILE_LEN], key[MD_AEAD_KEY_LEN], aad[MAGIC_LEN + ID_MAX];
    int r;

    memcpy(file, KEY_MAGIC, MAGIC_LEN);
    if ((r = md_random_bytes(key, sizeof(key))) < 0 ||
        (r = md_random_bytes(file + MAGIC_LEN, MD_AEAD_NONCE_LEN)) < 0)
        goto out;
    if ((r = md_aead_seal(ev->master, file + MAGIC_LEN, aad, key_aad(session_id, aad), key,
                          sizeof(key), file + MAGIC_LEN + MD_AEAD_NONCE_LEN)) < 0)
        goto out;
    if ((r = md_durable_write(path, 0600, file, sizeof(file))) < 0)
        goto out;
    memcpy(out, key, sizeof(key));
out:
    md_wipe(key, sizeof(key));
    return r;
}

/* Under ev->lock.  create: make one if absent.  Returns the cached entry. */
static int get_key(md_evidence *ev, const char *session_id, bool create, struct session_key **ret,
                   bool *ret_created)
{
    struct session_key *sk = g_hash_table_lookup(ev->keys, session_id);
    uint8_t file[KEY_FILE_LEN + 1];
    bool created = false;
    int r = 0;

    if (sk)
        goto done;
    char *path = key_path(ev, session_id);
    sk = g_new0(struct session_key, 1);
    sk->next_seq = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        ssize_t n = read_full(fd, file, sizeof(file));
        close(fd);
        r = n < 0 ? (int)n : unwrap_key(ev, session_id, file, (size_t)n, sk->key);
    } else if (errno == ENOENT && create) {
        r = create_key(ev, session_id, path, sk->key);
        created = r == 0;
    } else {
        r = errno == ENOENT ? -MD_E_EVIDENCE_KEY : -errno;
    }
    g_free(path);
    if (r < 0) {
        free_session_key(sk);
        return r;
    }
    g_hash_table_insert(ev->keys, g_strdup(session_id), sk);
done:
    *ret = sk;
    if (ret_created)
        *ret_created = created;
    return 0;
}

/* Copies the key out so no lock is held while it is used. */
static int copy_key(md_evidence *ev, const char *session_id, bool create,
                    uint8_t out[MD_AEAD_KEY_LEN], bool *ret_created)
{
    struct session_key *sk;
    g_mutex_lock(&ev->lock);
    int r = get_key(ev, session_id, create, &sk, ret_created);
    if (r == 0)
        memcpy(out, sk->key, MD_AEAD_KEY_LEN);
    g_mutex_unlock(&ev->lock);
    return r;
}

int md_evidence_session_key(md_evidence *ev, const char *session_id)
{
    uint8_t key[MD_AEAD_KEY_LEN];
    bool created = false;
    if (!ev || !id_ok(session_id))
        return -EINVAL;
    int r = copy_key(ev, session_id, true, key, &created);
    md_wipe(key, sizeof(key));
    return r < 0 ? r : created ? 1 : 0;
}

static char *session_dir(const md_evidence *ev, const char *session_id)
{
    return g_build_filename(ev->sessions_dir, session_id, NULL);
}

bool md_evidence_session_exists(md_evidence *ev, const char *session_id)
{
    if (!ev || !id_ok(session_id))
        return false;
    char *path = key_path(ev, session_id);
    char *sdir = session_dir(ev, session_id);
    bool found = g_file_test(path, G_FILE_TEST_EXISTS) || g_file_test(sdir, G_FILE_TEST_EXISTS);
    g_free(path);
    g_free(sdir);
    return found;
}

int md_evidence_session_destroy(md_evidence *ev, const char *session_id)
{
    int r = 0;
    if (!ev || !id_ok(session_id))
        return -EINVAL;
    char *path = key_path(ev, session_id);
    char *sdir = session_dir(ev, session_id);
    g_mutex_lock(&ev->lock);
    g_hash_table_remove(ev->keys, session_id);
    if (unlink(path) < 0)
        r = -errno;
    g_mutex_unlock(&ev->lock);
    if (r == 0)
        r = md_durable_sync_dir(ev->keys_dir);
    /* The ciphertext is now noise; remove it too, best effort. */
    DIR *d = opendir(sdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *p = g_build_filename(sdir, e->d_name, NULL);
            unlink(p);
            g_free(p);
        }
        closedir(d);
        rmdir(sdir);
    }
    g_free(path);
    g_free(sdir);
    return r;
}

/* ---- files ------------------------------------------------------------------ */

static size_t file_aad(uint8_t *aad, const uint8_t prefix[PREFIX_LEN], const char *session_id,
                       const char *file_id)
{
    size_t n = 0, sl = strlen(session_id), fl = strlen(file_id);
    memcpy(aad, FILE_MAGIC, MAGIC_LEN);
    n += MAGIC_LEN;
    memcpy(aad + n, prefix, PREFIX_LEN);
    n += PREFIX_LEN;
    memcpy(aad + n, session_id, sl + 1); /* with the NUL as separator */
    n += sl + 1;
    memcpy(aad + n, file_id, fl + 1);
    n += fl + 1;
    return n;
}

static void chunk_params(uint8_t *aad, size_t base, const uint8_t prefix[PREFIX_LEN],
                         uint64_t index, bool final, uint8_t nonce[MD_AEAD_NONCE_LEN])
{
    md_put_u64(aad + base, index);
    aad[base + 8] = final ? 1 : 0;
    memcpy(nonce, prefix, PREFIX_LEN);
    md_put_u32(nonce + PREFIX_LEN, (uint32_t)index);
}

static char *file_path(const char *sdir, const char *file_id, bool tmp)
{
    char *name = tmp ? g_strconcat(".", file_id, ".tmp", NULL) : g_strconcat(file_id, ".ev", NULL);
    char *path = g_build_filename(sdir, name, NULL);
    g_free(name);
    return path;
}

int md_evidence_file_begin(md_evidence *ev, const char *session_id, const char *file_id,
                           md_evidence_file **ret)
{
    md_evidence_file *w;
    uint8_t header[MAGIC_LEN + PREFIX_LEN];
    int r;

    if (!ev || !id_ok(session_id) || !id_ok(file_id) || !ret)
        return -EINVAL;
    w = g_new0(md_evidence_file, 1);
    w->ev = ev;
    w->fd = -1;
    w->session_dir = session_dir(ev, session_id);
    w->tmp_path = file_path(w->session_dir, file_id, true);
    w->final_path = file_path(w->session_dir, file_id, false);
    if ((r = copy_key(ev, session_id, true, w->key, NULL)) < 0)
        goto fail;
    if ((r = mkdir_private(w->session_dir)) < 0)
        goto fail;
    if (access(w->final_path, F_OK) == 0) {
        r = -EEXIST;
        goto fail;
    }
    if ((r = md_random_bytes(w->prefix, PREFIX_LEN)) < 0 || (r = md_sha256_ctx_new(&w->hash)) < 0)
        goto fail;
    w->aad_len = file_aad(w->aad, w->prefix, session_id, file_id);
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        r = -errno;
        goto fail;
    }
    memcpy(header, FILE_MAGIC, MAGIC_LEN);
    memcpy(header + MAGIC_LEN, w->prefix, PREFIX_LEN);
    if ((r = write_full(w->fd, header, sizeof(header))) < 0)
        goto fail;
    w->plain = g_malloc(MD_EVIDENCE_CHUNK);
    w->sealed = g_malloc(MD_EVIDENCE_CHUNK + MD_AEAD_TAG_LEN);
    *ret = w;
    return 0;
fail:
    md_evidence_file_abort(w);
    return r;
}

static int seal_chunk(md_evidence_file *w, bool final)
{
    uint8_t nonce[MD_AEAD_NONCE_LEN];
    int r;

    if (w->index > UINT32_MAX)
        return -EFBIG; /* 256 TiB: the nonce counter would wrap */
    chunk_params(w->aad, w->aad_len, w->prefix, w->index, final, nonce);
    if ((r = md_aead_seal(w->key, nonce, w->aad, w->aad_len + 9, w->plain, w->plain_len,
                          w->sealed)) < 0)
        return r;
    if ((r = write_full(w->fd, w->sealed, w->plain_len + MD_AEAD_TAG_LEN)) < 0)
        return r;
    md_wipe(w->plain, w->plain_len);
    w->plain_len = 0;
    w->index++;
    return 0;
}

int md_evidence_file_write(md_evidence_file *w, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    int r;

    if (!w || (!buf && len > 0))
        return -EINVAL;
    if (w->failed)
        return w->failed;
    if ((r = md_sha256_ctx_update(w->hash, buf, len)) < 0)
        goto fail;
    while (len > 0) {
        /* A full buffer is sealed only once more data shows it is not the last. */
        if (w->plain_len == MD_EVIDENCE_CHUNK && (r = seal_chunk(w, false)) < 0)
            goto fail;
        size_t n = MIN(len, MD_EVIDENCE_CHUNK - w->plain_len);
        memcpy(w->plain + w->plain_len, p, n);
        w->plain_len += n;
        p += n;
        len -= n;
    }
    return 0;
fail:
    w->failed = r;
    return r;
}

int md_evidence_file_commit(md_evidence_file *w, uint8_t ret_sha256[MD_SHA256_LEN])
{
    uint8_t digest[MD_SHA256_LEN];
    int r;

    if (!w)
        return -EINVAL;
    if ((r = w->failed) < 0 || (r = seal_chunk(w, true)) < 0 ||
        (r = md_sha256_ctx_final(w->hash, digest)) < 0)
        goto out;
    if (fsync(w->fd) < 0 || close(w->fd) < 0) {
        r = -errno;
        w->fd = -1;
        goto out;
    }
    w->fd = -1;
    /* Never replace a file committed meanwhile under the same id. */
    if (renameat2(AT_FDCWD, w->tmp_path, AT_FDCWD, w->final_path, RENAME_NOREPLACE) < 0) {
        r = -errno;
        goto out;
    }
    if ((r = md_durable_sync_dir(w->session_dir)) < 0)
        goto out;
    if (ret_sha256)
        memcpy(ret_sha256, digest, sizeof(digest));
out:
    md_evidence_file_abort(w);
    return r;
}

md_evidence_file *md_evidence_file_abort(md_evidence_file *w)
{
    if (!w)
        return NULL;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp_path)
        unlink(w->tmp_path); /* no-op after a commit */
    md_sha256_ctx_free(w->hash);
    if (w->plain)
        md_wipe(w->plain, MD_EVIDENCE_CHUNK);
    g_free(w->plain);
    g_free(w->sealed);
    md_wipe(w->key, sizeof(w->key));
    g_free(w->tmp_path);
    g_free(w->final_path);
    g_free(w->session_dir);
    g_free(w);
    return NULL;
}

struct md_evidence_reader {
    int fd;
    uint8_t key[MD_AEAD_KEY_LEN], prefix[PREFIX_LEN], aad[AAD_MAX];
    size_t aad_base;
    uint8_t *sealed, *plain; /* sealed holds one chunk and one peeked byte */
    size_t have;             /* bytes of sealed already read */
    uint64_t index;
    bool finished;
};

int md_evidence_reader_open(md_evidence *ev, const char *session_id, const char *file_id,
                            md_evidence_reader **ret)
{
    uint8_t header[MAGIC_LEN + PREFIX_LEN];
    char *sdir = NULL, *path = NULL;
    int r;

    if (!ev || !id_ok(session_id) || !id_ok(file_id) || !ret)
        return -EINVAL;
    md_evidence_reader *rd = g_new0(md_evidence_reader, 1);
    rd->fd = -1;
    sdir = session_dir(ev, session_id);
    path = file_path(sdir, file_id, false);
    if ((r = copy_key(ev, session_id, false, rd->key, NULL)) < 0)
        goto out;
    rd->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rd->fd < 0) {
        r = -errno;
        goto out;
    }
    if (read_full(rd->fd, header, sizeof(header)) != (ssize_t)sizeof(header) ||
        memcmp(header, FILE_MAGIC, MAGIC_LEN) != 0) {
        r = -MD_E_EVIDENCE_CORRUPT;
        goto out;
    }
    memcpy(rd->prefix, header + MAGIC_LEN, PREFIX_LEN);
    rd->aad_base = file_aad(rd->aad, rd->prefix, session_id, file_id);
    rd->sealed = g_malloc(MD_EVIDENCE_CHUNK + MD_AEAD_TAG_LEN + 1);
    rd->plain = g_malloc(MD_EVIDENCE_CHUNK);
    r = 0;
out:
    g_free(path);
    g_free(sdir);
    if (r < 0)
        rd = md_evidence_reader_free(rd);
    *ret = rd;
    return r;
}

int md_evidence_reader_next(md_evidence_reader *rd, const uint8_t **ret_buf, size_t *ret_len)
{
    const size_t full = MD_EVIDENCE_CHUNK + MD_AEAD_TAG_LEN;
    uint8_t nonce[MD_AEAD_NONCE_LEN];

    if (rd->finished)
        return 0;
    ssize_t n = read_full(rd->fd, rd->sealed + rd->have, full + 1 - rd->have);
    if (n < 0)
        return (int)n;
    rd->have += (size_t)n;
    /* One byte beyond a full chunk tells that it is not the last. */
    bool final = rd->have <= full;
    size_t len = final ? rd->have : full;
    if (len < MD_AEAD_TAG_LEN || rd->index > UINT32_MAX)
        return -MD_E_EVIDENCE_CORRUPT;
    chunk_params(rd->aad, rd->aad_base, rd->prefix, rd->index, final, nonce);
    if (md_aead_open(rd->key, nonce, rd->aad, rd->aad_base + 9, rd->sealed, len, rd->plain) < 0)
        return -MD_E_EVIDENCE_CORRUPT;
    if (final) {
        rd->finished = true;
    } else {
        rd->sealed[0] = rd->sealed[full]; /* the peeked byte starts the next chunk */
        rd->have = 1;
        rd->index++;
    }
    *ret_buf = rd->plain;
    *ret_len = len - MD_AEAD_TAG_LEN;
    return 1;
}

md_evidence_reader *md_evidence_reader_free(md_evidence_reader *rd)
{
    if (!rd)
        return NULL;
    if (rd->fd >= 0)
        close(rd->fd);
    if (rd->plain)
        md_wipe(rd->plain, MD_EVIDENCE_CHUNK);
    g_free(rd->plain);
    g_free(rd->sealed);
    md_wipe(rd->key, sizeof(rd->key));
    g_free(rd);
    return NULL;
}

int md_evidence_file_read(md_evidence *ev, const char *session_id, const char *file_id,
                          md_evidence_sink sink, void *ud)
{
    md_evidence_reader *rd;
    const uint8_t *buf;
    size_t len;
    int r;

    if (!sink)
        return -EINVAL;
    if ((r = md_evidence_reader_open(ev, session_id, file_id, &rd)) < 0)
        return r;
    while ((r = md_evidence_reader_next(rd, &buf, &len)) > 0)
        if ((r = sink(buf, len, ud)) < 0)
            break;
    md_evidence_reader_free(rd);
    return r;
}

static int to_file(const uint8_t *buf, size_t len, void *ud)
{
    return fwrite(buf, 1, len, ud) == len ? 0 : -EIO;
}

int md_evidence_file_export(md_evidence *ev, const char *session_id, const char *file_id, FILE *out)
{
    if (!out)
        return -EINVAL;
    int r = md_evidence_file_read(ev, session_id, file_id, to_file, out);
    if (r == 0 && fflush(out) != 0)
        r = -EIO;
    return r;
}

/* ---- chat transcript -------------------------------------------------------- */

static size_t chat_aad(uint8_t *aad, const char *session_id, uint64_t seq)
{
    size_t sl = strlen(session_id);
    memcpy(aad, CHAT_MAGIC, MAGIC_LEN);
    memcpy(aad + MAGIC_LEN, session_id, sl + 1);
    md_put_u64(aad + MAGIC_LEN + sl + 1, seq);
    return MAGIC_LEN + sl + 1 + 8;
}

static char *transcript_path(const md_evidence *ev, const char *session_id)
{
    return g_build_filename(ev->sessions_dir, session_id, "transcript", NULL);
}

typedef int (*record_fn)(uint64_t seq, const uint8_t *rec, size_t len, void *ud);

/* Walks the records of an open transcript; fn sees each sealed record. */
static int walk_records(int fd, record_fn fn, void *ud, uint64_t *ret_count)
{
    uint8_t head[4], magic[MAGIC_LEN], *rec = NULL;
    uint64_t seq = 0;
    int r = 0;

    ssize_t n = read_full(fd, magic, sizeof(magic));
    if (n == 0)
        goto done; /* empty: created, nothing appended yet */
    if (n != MAGIC_LEN || memcmp(magic, CHAT_MAGIC, MAGIC_LEN) != 0)
        return -MD_E_EVIDENCE_CORRUPT;
    rec = g_malloc(MD_AEAD_NONCE_LEN + MD_EVIDENCE_MAX_RECORD + MD_AEAD_TAG_LEN);
    for (;; seq++) {
        n = read_full(fd, head, sizeof(head));
        if (n == 0)
            break;
        uint32_t len = n == 4 ? md_get_u32(head) : 0;
        if (len < MD_AEAD_NONCE_LEN + MD_AEAD_TAG_LEN ||
            len > MD_AEAD_NONCE_LEN + MD_EVIDENCE_MAX_RECORD + MD_AEAD_TAG_LEN ||
            read_full(fd, rec, len) != (ssize_t)len) {
            r = -MD_E_EVIDENCE_CORRUPT; /* torn or garbage record */
            goto out;
        }
        if (fn && (r = fn(seq, rec, len, ud)) < 0)
            goto out;
    }
done:
    if (ret_count)
        *ret_count = seq;
out:
    g_free(rec);
    return r;
}

int64_t md_evidence_chat_append(md_evidence *ev, const char *session_id, const void *record,
                                size_t len)
{
    uint8_t aad[MAGIC_LEN + ID_MAX + 1 + 8], *buf = NULL;
    struct session_key *sk;
    char *path = NULL, *sdir = NULL;
    int fd = -1;
    int64_t r;

    if (!ev || !id_ok(session_id) || !record || len == 0)
        return -EINVAL;
    if (len > MD_EVIDENCE_MAX_RECORD)
        return -MD_E_TOO_LARGE;
    sdir = session_dir(ev, session_id);
    path = transcript_path(ev, session_id);
    /* The lock also serializes appends, so sequence numbers stay dense. */
    g_mutex_lock(&ev->lock);
    if ((r = get_key(ev, session_id, true, &sk, NULL)) < 0 || (r = mkdir_private(sdir)) < 0)
        goto out;
    fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    if (sk->next_seq < 0) {
        uint64_t count;
        if ((r = walk_records(fd, NULL, NULL, &count)) < 0)
            goto out;
        sk->next_seq = (int64_t)count;
    }
    size_t total = MAGIC_LEN + 4 + MD_AEAD_NONCE_LEN + len + MD_AEAD_TAG_LEN, off = 0;
    buf = g_malloc(total);
    if (lseek(fd, 0, SEEK_END) == 0) {
        memcpy(buf, CHAT_MAGIC, MAGIC_LEN);
        off = MAGIC_LEN;
    }
    md_put_u32(buf + off, (uint32_t)(MD_AEAD_NONCE_LEN + len + MD_AEAD_TAG_LEN));
    uint8_t *nonce = buf + off + 4;
    if ((r = md_random_bytes(nonce, MD_AEAD_NONCE_LEN)) < 0 ||
        (r = md_aead_seal(sk->key, nonce, aad, chat_aad(aad, session_id, (uint64_t)sk->next_seq),
                          record, len, nonce + MD_AEAD_NONCE_LEN)) < 0)
        goto out;
    /* One write: a crash leaves at worst a torn last record, which reads
     * as corrupt rather than as a shorter transcript. */
    size_t rec_len = off + 4 + MD_AEAD_NONCE_LEN + len + MD_AEAD_TAG_LEN;
    if ((r = write_full(fd, buf, rec_len)) < 0 || (fsync(fd) < 0 && (r = -errno) < 0))
        goto out;
    r = sk->next_seq++;
out:
    g_mutex_unlock(&ev->lock);
    if (fd >= 0)
        close(fd);
    g_free(buf);
    g_free(path);
    g_free(sdir);
    return r;
}

struct chat_read {
    const uint8_t *key;
    const char *session_id;
    md_evidence_record_sink sink;
    void *ud;
    uint8_t *plain;
};

static int open_record(uint64_t seq, const uint8_t *rec, size_t len, void *ud)
{
    struct chat_read *cr = ud;
    uint8_t aad[MAGIC_LEN + ID_MAX + 1 + 8];
    size_t plain_len = len - MD_AEAD_NONCE_LEN - MD_AEAD_TAG_LEN;
    if (md_aead_open(cr->key, rec, aad, chat_aad(aad, cr->session_id, seq), rec + MD_AEAD_NONCE_LEN,
                     len - MD_AEAD_NONCE_LEN, cr->plain) < 0)
        return -MD_E_EVIDENCE_CORRUPT;
    int r = cr->sink(seq, cr->plain, plain_len, cr->ud);
    md_wipe(cr->plain, plain_len);
    return r;
}

int md_evidence_chat_read(md_evidence *ev, const char *session_id, md_evidence_record_sink sink,
                          void *ud)
{
    uint8_t key[MD_AEAD_KEY_LEN];
    char *path;
    int fd, r;

    if (!ev || !id_ok(session_id) || !sink)
        return -EINVAL;
    if ((r = copy_key(ev, session_id, false, key, NULL)) < 0)
        return r;
    path = transcript_path(ev, session_id);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    g_free(path);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    struct chat_read cr = {key, session_id, sink, ud, g_malloc(MD_EVIDENCE_MAX_RECORD)};
    r = walk_records(fd, open_record, &cr, NULL);
    g_free(cr.plain);
    close(fd);
out:
    md_wipe(key, sizeof(key));
    return r;
}

/* ---- recordings (md_evidence.h, "Recordings") -------------------------------- */

#define REC_MAGIC "MDEVREC1"
#define REC_KEY_MAGIC "MDEVRKY1"
#define REC_HEADER_LEN (MAGIC_LEN + PREFIX_LEN)
#define REC_LEN_FIELD 4

G_STATIC_ASSERT(MD_EVIDENCE_WRAPPED_KEY_LEN == KEY_FILE_LEN);

struct md_evidence_rec {
    int fd;
    char *path;
    uint8_t key[MD_AEAD_KEY_LEN], prefix[PREFIX_LEN], aad[AAD_MAX];
    size_t aad_len; /* up to and excluding index and final flag */
    uint8_t *plain, *sealed;
    size_t plain_len;
    uint64_t index, plain_bytes, file_bytes;
    md_sha256_ctx *hash; /* of the ciphertext file, as written */
    int failed;
};

static char *rec_path(const md_evidence *ev, const char *recording_id)
{
    char *name = g_strconcat(recording_id, ".rec", NULL);
    char *path = g_build_filename(ev->dir, "recordings", name, NULL);
    g_free(name);
    return path;
}

static size_t rec_aad(uint8_t *aad, const uint8_t prefix[PREFIX_LEN], const char *recording_id)
{
    size_t n = strlen(recording_id);
    memcpy(aad, REC_MAGIC, MAGIC_LEN);
    memcpy(aad + MAGIC_LEN, prefix, PREFIX_LEN);
    memcpy(aad + MAGIC_LEN + PREFIX_LEN, recording_id, n + 1);
    return MAGIC_LEN + PREFIX_LEN + n + 1;
}

static size_t rec_key_aad(const char *recording_id, uint8_t *aad)
{
    size_t n = strlen(recording_id);
    memcpy(aad, REC_KEY_MAGIC, MAGIC_LEN);
    memcpy(aad + MAGIC_LEN, recording_id, n);
    return MAGIC_LEN + n;
}

static int rec_unwrap(const md_evidence *ev, const char *recording_id, const uint8_t *wrapped,
                      size_t len, uint8_t out[MD_AEAD_KEY_LEN])
{
    uint8_t aad[MAGIC_LEN + ID_MAX];
    if (!wrapped || len != KEY_FILE_LEN || memcmp(wrapped, REC_KEY_MAGIC, MAGIC_LEN) != 0)
        return -MD_E_EVIDENCE_KEY;
    if (md_aead_open(ev->master, wrapped + MAGIC_LEN, aad, rec_key_aad(recording_id, aad),
                     wrapped + MAGIC_LEN + MD_AEAD_NONCE_LEN, MD_AEAD_KEY_LEN + MD_AEAD_TAG_LEN,
                     out) < 0)
        return -MD_E_EVIDENCE_KEY;
    return 0;
}

static int rec_write_out(md_evidence_rec *w, const void *buf, size_t len)
{
    int r = write_full(w->fd, buf, len);
    if (r == 0)
        r = md_sha256_ctx_update(w->hash, buf, len);
    if (r == 0)
        w->file_bytes += len;
    return r;
}

int md_evidence_rec_begin(md_evidence *ev, const char *recording_id,
                          uint8_t ret_wrapped_key[MD_EVIDENCE_WRAPPED_KEY_LEN],
                          md_evidence_rec **ret)
{
    uint8_t wrapped[KEY_FILE_LEN], aad[MAGIC_LEN + ID_MAX], header[REC_HEADER_LEN];
    char *dir = NULL;
    int r;

    if (!ev || !id_ok(recording_id) || !ret_wrapped_key || !ret)
        return -EINVAL;
    md_evidence_rec *w = g_new0(md_evidence_rec, 1);
    w->fd = -1;
    dir = g_build_filename(ev->dir, "recordings", NULL);
    w->path = rec_path(ev, recording_id);
    if ((r = mkdir_private(dir)) < 0)
        goto out;
    memcpy(wrapped, REC_KEY_MAGIC, MAGIC_LEN);
    if ((r = md_random_bytes(w->key, sizeof(w->key))) < 0 ||
        (r = md_random_bytes(wrapped + MAGIC_LEN, MD_AEAD_NONCE_LEN)) < 0 ||
        (r = md_random_bytes(w->prefix, PREFIX_LEN)) < 0 || (r = md_sha256_ctx_new(&w->hash)) < 0)
        goto out;
    if ((r = md_aead_seal(ev->master, wrapped + MAGIC_LEN, aad, rec_key_aad(recording_id, aad),
                          w->key, sizeof(w->key), wrapped + MAGIC_LEN + MD_AEAD_NONCE_LEN)) < 0)
        goto out;
    w->aad_len = rec_aad(w->aad, w->prefix, recording_id);
    w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        r = -errno;
        goto out;
    }
    memcpy(header, REC_MAGIC, MAGIC_LEN);
    memcpy(header + MAGIC_LEN, w->prefix, PREFIX_LEN);
    if ((r = rec_write_out(w, header, sizeof(header))) < 0)
        goto out;
    if (fsync(w->fd) < 0 || (r = md_durable_sync_dir(dir)) < 0) {
        r = r < 0 ? r : -errno;
        goto out;
    }
    w->plain = g_malloc(MD_EVIDENCE_CHUNK);
    w->sealed = g_malloc(REC_LEN_FIELD + MD_EVIDENCE_CHUNK + MD_AEAD_TAG_LEN);
    memcpy(ret_wrapped_key, wrapped, sizeof(wrapped));
    *ret = w;
    w = NULL;
out:
    if (w) {
        if (w->fd >= 0)
            unlink(w->path); /* ours, just created */
        md_evidence_rec_abandon(w);
    }
    g_free(dir);
    return r;
}

/* Seals the buffer as chunk w->index (an empty one only when final), writes
 * it in one piece and fsyncs. */
static int rec_seal(md_evidence_rec *w, bool final)
{
    uint8_t nonce[MD_AEAD_NONCE_LEN];
    int r;

    if (w->index > UINT32_MAX)
        return -EFBIG;
    chunk_params(w->aad, w->aad_len, w->prefix, w->index, final, nonce);
    md_put_u32(w->sealed, (uint32_t)w->plain_len);
    if ((r = md_aead_seal(w->key, nonce, w->aad, w->aad_len + 9, w->plain, w->plain_len,
                          w->sealed + REC_LEN_FIELD)) < 0)
        return r;
    if ((r = rec_write_out(w, w->sealed, REC_LEN_FIELD + w->plain_len + MD_AEAD_TAG_LEN)) < 0)
        return r;
    if (fsync(w->fd) < 0)
        return -errno;
    md_wipe(w->plain, w->plain_len);
    w->plain_bytes += w->plain_len;
    w->plain_len = 0;
    w->index++;
    return 0;
}

int md_evidence_rec_write(md_evidence_rec *w, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    int r;

    if (!w || (!buf && len > 0))
        return -EINVAL;
    if (w->failed)
        return w->failed;
    while (len > 0) {
        size_t n = MIN(len, MD_EVIDENCE_CHUNK - w->plain_len);
        memcpy(w->plain + w->plain_len, p, n);
        w->plain_len += n;
        p += n;
        len -= n;
        if (w->plain_len == MD_EVIDENCE_CHUNK && (r = rec_seal(w, false)) < 0) {
            w->failed = r;
            return r;
        }
    }
    return 0;
}

int md_evidence_rec_flush(md_evidence_rec *w)
{
    int r;
    if (!w)
        return -EINVAL;
    if (w->failed)
        return w->failed;
    if (w->plain_len == 0)
        return 0;
    if ((r = rec_seal(w, false)) < 0)
        w->failed = r;
    return r;
}

uint64_t md_evidence_rec_size(const md_evidence_rec *w)
{
    return w ? w->plain_bytes : 0;
}

int md_evidence_rec_finish(md_evidence_rec *w, char *ret_sha256_hex, uint64_t *ret_bytes)
{
    uint8_t digest[MD_SHA256_LEN];
    int r;

    if (!w)
        return -EINVAL;
    if ((r = w->failed) < 0 || (r = rec_seal(w, true)) < 0 ||
        (r = md_sha256_ctx_final(w->hash, digest)) < 0)
        goto out;
    if (close(w->fd) < 0) {
        w->fd = -1;
        r = -errno;
        goto out;
    }
    w->fd = -1;
    if (ret_sha256_hex)
        md_hex_encode(digest, sizeof(digest), ret_sha256_hex);
    if (ret_bytes)
        *ret_bytes = w->file_bytes;
out:
    md_evidence_rec_abandon(w);
    return r;
}

int md_evidence_rec_cut(md_evidence_rec *w, char *ret_sha256_hex, uint64_t *ret_bytes)
{
    uint8_t digest[MD_SHA256_LEN];
    int r;

    if (!w)
        return -EINVAL;
    r = md_evidence_rec_flush(w);
    int h = md_sha256_ctx_final(w->hash, digest);
    if (h == 0 && ret_sha256_hex)
        md_hex_encode(digest, sizeof(digest), ret_sha256_hex);
    if (ret_bytes)
        *ret_bytes = w->file_bytes;
    md_evidence_rec_abandon(w);
    return r < 0 ? r : h;
}

md_evidence_rec *md_evidence_rec_abandon(md_evidence_rec *w)
{
    if (!w)
        return NULL;
    if (w->fd >= 0) {
        fsync(w->fd); /* what was sealed stays readable */
        close(w->fd);
    }
    md_sha256_ctx_free(w->hash);
    if (w->plain)
        md_wipe(w->plain, MD_EVIDENCE_CHUNK);
    g_free(w->plain);
    g_free(w->sealed);
    md_wipe(w->key, sizeof(w->key));
    g_free(w->path);
    g_free(w);
    return NULL;
}

int md_evidence_rec_remove(md_evidence *ev, const char *recording_id)
{
    if (!ev || !id_ok(recording_id))
        return -EINVAL;
    char *path = rec_path(ev, recording_id);
    char *dir = g_path_get_dirname(path);
    int r = unlink(path) < 0 ? -errno : md_durable_sync_dir(dir);
    g_free(dir);
    g_free(path);
    return r;
}

int md_evidence_rec_file_hash(md_evidence *ev, const char *recording_id, char *ret_sha256_hex,
                              uint64_t *ret_bytes)
{
    uint8_t digest[MD_SHA256_LEN];
    md_sha256_ctx *hash = NULL;
    uint8_t *buf = NULL;
    uint64_t total = 0;
    int r, fd;

    if (!ev || !id_ok(recording_id))
        return -EINVAL;
    char *path = rec_path(ev, recording_id);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    g_free(path);
    if (fd < 0)
        return -errno;
    if ((r = md_sha256_ctx_new(&hash)) < 0)
        goto out;
    buf = g_malloc(MD_EVIDENCE_CHUNK);
    for (;;) {
        ssize_t n = read_full(fd, buf, MD_EVIDENCE_CHUNK);
        if (n < 0) {
            r = (int)n;
            goto out;
        }
        if (n == 0)
            break;
        if ((r = md_sha256_ctx_update(hash, buf, (size_t)n)) < 0)
            goto out;
        total += (uint64_t)n;
    }
    if ((r = md_sha256_ctx_final(hash, digest)) < 0)
        goto out;
    if (ret_sha256_hex)
        md_hex_encode(digest, sizeof(digest), ret_sha256_hex);
    if (ret_bytes)
        *ret_bytes = total;
out:
    g_free(buf);
    md_sha256_ctx_free(hash);
    close(fd);
    return r;
}

/* Where each complete chunk starts in the file and in the plaintext. */
struct rec_chunk {
    uint64_t file_off, plain_off;
    uint32_t len;
};

struct md_evidence_rec_reader {
    int fd;
    uint8_t key[MD_AEAD_KEY_LEN], prefix[PREFIX_LEN], aad[AAD_MAX];
    size_t aad_base;
    GArray *chunks; /* struct rec_chunk */
    bool final_seen;
    uint64_t size;
    int64_t cached; /* index of the chunk in plain, -1 none */
    uint8_t *sealed, *plain;
};

static int rec_load(md_evidence_rec_reader *rd, guint i);

/* Walks the length fields: every complete chunk is indexed; a final one
 * ends the walk (bytes after it are tampering); a torn last chunk is a cut. */
static int rec_index(md_evidence_rec_reader *rd, uint64_t file_size)
{
    uint64_t off = REC_HEADER_LEN, plain = 0;
    uint8_t lenb[REC_LEN_FIELD];

    while (off + REC_LEN_FIELD <= file_size) {
        if (pread(rd->fd, lenb, sizeof(lenb), (off_t)off) != (ssize_t)sizeof(lenb))
            return -EIO;
        uint32_t len = md_get_u32(lenb);
        if (len > MD_EVIDENCE_CHUNK)
            return -MD_E_EVIDENCE_CORRUPT;
        uint64_t end = off + REC_LEN_FIELD + len + MD_AEAD_TAG_LEN;
        if (end > file_size)
            break; /* torn: the crash hit while this chunk was written */
        struct rec_chunk c = {.file_off = off, .plain_off = plain, .len = len};
        g_array_append_val(rd->chunks, c);
        plain += len;
        off = end;
    }
    rd->size = plain;
    /* Whether the last complete chunk is final is known only by opening it. */
    if (rd->chunks->len > 0) {
        int r = rec_load(rd, rd->chunks->len - 1);
        if (r < 0)
            return r;
    }
    if (rd->final_seen && off != file_size)
        return -MD_E_EVIDENCE_CORRUPT; /* data appended after the final chunk */
    return 0;
}

int md_evidence_rec_reader_open(md_evidence *ev, const char *recording_id,
                                const uint8_t *wrapped_key, size_t wrapped_len,
                                md_evidence_rec_reader **ret)
{
    uint8_t header[REC_HEADER_LEN];
    struct stat st;
    int r;

    if (!ev || !id_ok(recording_id) || !ret)
        return -EINVAL;
    md_evidence_rec_reader *rd = g_new0(md_evidence_rec_reader, 1);
    rd->fd = -1;
    rd->cached = -1;
    rd->chunks = g_array_new(false, false, sizeof(struct rec_chunk));
    char *path = rec_path(ev, recording_id);
    if ((r = rec_unwrap(ev, recording_id, wrapped_key, wrapped_len, rd->key)) < 0)
        goto out;
    rd->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rd->fd < 0 || fstat(rd->fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (read_full(rd->fd, header, sizeof(header)) != (ssize_t)sizeof(header) ||
        memcmp(header, REC_MAGIC, MAGIC_LEN) != 0) {
        r = -MD_E_EVIDENCE_CORRUPT;
        goto out;
    }
    memcpy(rd->prefix, header + MAGIC_LEN, PREFIX_LEN);
    rd->aad_base = rec_aad(rd->aad, rd->prefix, recording_id);
    rd->sealed = g_malloc(MD_EVIDENCE_CHUNK + MD_AEAD_TAG_LEN);
    rd->plain = g_malloc(MD_EVIDENCE_CHUNK);
    r = rec_index(rd, (uint64_t)st.st_size);
out:
    g_free(path);
    if (r < 0)
        rd = md_evidence_rec_reader_free(rd);
    *ret = rd;
    return r;
}

uint64_t md_evidence_rec_reader_size(const md_evidence_rec_reader *rd)
{
    return rd->size;
}

bool md_evidence_rec_reader_truncated(const md_evidence_rec_reader *rd)
{
    return !rd->final_seen;
}

/* Opens chunk i into rd->plain.  A chunk fails as non-final and as final
 * alike only if it was altered; which one opened tells if it is the last. */
static int rec_load(md_evidence_rec_reader *rd, guint i)
{
    const struct rec_chunk *c = &g_array_index(rd->chunks, struct rec_chunk, i);
    uint8_t nonce[MD_AEAD_NONCE_LEN];
    size_t n = c->len + MD_AEAD_TAG_LEN;

    if (rd->cached == (int64_t)i)
        return 0;
    rd->cached = -1;
    if (pread(rd->fd, rd->sealed, n, (off_t)(c->file_off + REC_LEN_FIELD)) != (ssize_t)n)
        return -EIO;
    for (int final = 0; final <= 1; final++) {
        chunk_params(rd->aad, rd->aad_base, rd->prefix, i, final, nonce);
        if (md_aead_open(rd->key, nonce, rd->aad, rd->aad_base + 9, rd->sealed, n, rd->plain) ==
            0) {
            if (final && i + 1 != rd->chunks->len)
                return -MD_E_EVIDENCE_CORRUPT; /* a final chunk followed by more */
            if (final)
                rd->final_seen = true;
            rd->cached = i;
            return 0;
        }
    }
    return -MD_E_EVIDENCE_CORRUPT;
}

ssize_t md_evidence_rec_reader_read(md_evidence_rec_reader *rd, uint64_t offset, void *buf,
                                    size_t len)
{
    uint8_t *out = buf;
    size_t done = 0;

    if (!rd || (!buf && len > 0))
        return -EINVAL;
    /* Binary search for the chunk holding offset. */
    guint lo = 0, hi = rd->chunks->len;
    while (hi - lo > 1) {
        guint mid = (lo + hi) / 2;
        if (g_array_index(rd->chunks, struct rec_chunk, mid).plain_off <= offset)
            lo = mid;
        else
            hi = mid;
    }
    for (guint i = lo; i < rd->chunks->len && done < len; i++) {
        const struct rec_chunk *c = &g_array_index(rd->chunks, struct rec_chunk, i);
        int r = rec_load(rd, i);
        if (r < 0)
            return r;
        uint64_t at = offset + done;
        if (at < c->plain_off || at >= c->plain_off + c->len)
            continue;
        size_t from = (size_t)(at - c->plain_off);
        size_t n = MIN(len - done, c->len - from);
        memcpy(out + done, rd->plain + from, n);
        done += n;
    }
    return (ssize_t)done;
}

md_evidence_rec_reader *md_evidence_rec_reader_free(md_evidence_rec_reader *rd)
{
    if (!rd)
        return NULL;
    if (rd->fd >= 0)
        close(rd->fd);
    if (rd->plain)
        md_wipe(rd->plain, MD_EVIDENCE_CHUNK);
    g_free(rd->plain);
    g_free(rd->sealed);
    if (rd->chunks)
        g_array_free(rd->chunks, true);
    md_wipe(rd->key, sizeof(rd->key));
    g_free(rd);
    return NULL;
}

/* ---- start-up sweep ------------------------------------------------------------ */

/* Removes the files in dir whose names are temporaries: ".<id>.tmp" (a file
 * being received) or "<name>.XXXXXX.tmp" (md_durable_write).  Counts into
 * *removed. */
static int sweep_dir(const char *dir, unsigned *removed)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int r = 0;

    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((e = readdir(d))) {
        if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
            continue;
        if (!g_str_has_suffix(e->d_name, ".tmp"))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) < 0) {
            if (errno != ENOENT)
                r = -errno;
            continue;
        }
        (*removed)++;
    }
    closedir(d);
    return r;
}

int md_evidence_sweep_partial(md_evidence *ev, unsigned *ret_removed)
{
    unsigned removed = 0;
    DIR *d;
    struct dirent *e;
    int r, first = 0;

    if (!ev || !ret_removed)
        return -EINVAL;
    if ((r = sweep_dir(ev->keys_dir, &removed)) < 0)
        first = r;
    d = opendir(ev->sessions_dir);
    if (!d) {
        r = -errno;
        goto out;
    }
    while ((e = readdir(d))) {
        if (!id_ok(e->d_name))
            continue; /* ".", ".." and anything that is not a session */
        char *sdir = g_build_filename(ev->sessions_dir, e->d_name, NULL);
        if ((r = sweep_dir(sdir, &removed)) < 0 && !first)
            first = r;
        g_free(sdir);
    }
    closedir(d);
    r = first;
out:
    if (r == 0)
        *ret_removed = removed;
    return r;
}
