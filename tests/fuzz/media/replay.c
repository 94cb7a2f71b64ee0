/*
 * Replays a fuzz corpus through a harness without libFuzzer: every regular
 * file of each directory given is read and fed to LLVMFuzzerTestOneInput.
 * This is how committed corpora and crash inputs run in every build.
 */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    unsigned files = 0;
    for (int i = 1; i < argc; i++) {
        GError *error = NULL;
        GDir *dir = g_dir_open(argv[i], 0, &error);
        if (!dir) {
            fprintf(stderr, "%s\n", error->message);
            g_error_free(error);
            return 1;
        }
        const char *name;
        while ((name = g_dir_read_name(dir))) {
            char *path = g_build_filename(argv[i], name, NULL);
            char *data = NULL;
            gsize len = 0;
            if (g_file_test(path, G_FILE_TEST_IS_REGULAR) &&
                g_file_get_contents(path, &data, &len, NULL)) {
                LLVMFuzzerTestOneInput((const uint8_t *)data, len);
                files++;
            }
            g_free(data);
            g_free(path);
        }
        g_dir_close(dir);
    }
    fprintf(stderr, "replayed %u inputs\n", files);
    return files > 0 ? 0 : 1;
}
