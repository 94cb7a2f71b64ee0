/*
 * The one table of error names and texts (see md_err.h).  Everything here is
 * constant data: safe from any thread.
 */
#include "md_err.h"

#include <errno.h>
#include <string.h>

struct md_error_info {
    const char *code;
    const char *text;
};

static const struct md_error_info error_info[] = {
#define MD_X_INFO(name, c, t) [MD_E_##name - MD_E__BASE] = {c, t},
    MD_ERROR_TABLE(MD_X_INFO)
#undef MD_X_INFO
};

static const struct md_error_info *lookup(int err)
{
    int e = err < 0 ? -err : err;
    if (e > MD_E__BASE && e < MD_E__END)
        return &error_info[e - MD_E__BASE];
    return NULL;
}

const char *md_strerror(int err)
{
    const struct md_error_info *info = lookup(err);
    if (info)
        return info->text;
    if (err == 0)
        return "success";
    return strerror(err < 0 ? -err : err);
}

const char *md_err_code(int err)
{
    const struct md_error_info *info = lookup(err);
    if (info)
        return info->code;
    switch (err < 0 ? -err : err) {
    case EINVAL:
        return "invalid_argument";
    case ENOENT:
        return "not_found";
    case EEXIST:
        return "already_exists";
    case EACCES:
    case EPERM:
        return "forbidden";
    case ENOMEM:
        return "out_of_memory";
    default:
        return "internal";
    }
}

int md_err_from_code(const char *code)
{
    for (int e = MD_E__BASE + 1; e < MD_E__END; e++)
        if (strcmp(error_info[e - MD_E__BASE].code, code) == 0)
            return e;
    return 0;
}
