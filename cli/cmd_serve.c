/* `madoguchi serve`: run the gateway until SIGTERM. */
#include "cli.h"
#include "md_server.h"

#include <stdio.h>

int md_cmd_serve(md_cli *cli, int argc, char **argv)
{
    bool done;
    int status =
        md_cli_parse(&argc, &argv, "", "Runs the gateway until SIGTERM or SIGINT.", NULL, &done);
    if (done)
        return status;
    if (argc > 1) {
        fprintf(stderr, "madoguchi serve: unexpected argument %s\n", argv[1]);
        return 2;
    }
    if (md_cli_ensure_data_dir(cli) < 0)
        return 1;
    md_server *srv;
    int r = md_server_new(&cli->cfg, &srv);
    if (r < 0)
        return md_cli_fail("serve", r);
    r = md_server_run(srv);
    md_server_free(srv);
    return r == 0 ? 0 : 1;
}
