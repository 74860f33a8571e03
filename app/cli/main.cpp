// ckpt: the command-line twin of Checkpoint Studio. Commands that need no numbers use the format
// layer only and never load LibTorch.
#include "infocommand.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#ifndef CKPT_VERSION
#define CKPT_VERSION "0.0.0"
#endif

int main(int argc, char **argv)
{
    CLI::App app{"ckpt — inspect PyTorch checkpoints without Python and without running their code", "ckpt"};
    app.set_version_flag("--version", std::string("ckpt ") + CKPT_VERSION);
    app.require_subcommand(1);

    ckpt::cli::InfoOptions info;
    auto *infoCmd = app.add_subcommand("info", "Summarise a checkpoint: format, kind, state dict, optimizer, metadata");
    infoCmd->add_option("file", info.file, "Checkpoint file (.pth .pt .ckpt .bin .tar)")->required();
    infoCmd->add_flag("--json", info.json, "Print a stable JSON document instead of text");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return app.exit(e);
    }
    if (infoCmd->parsed())
        return ckpt::cli::runInfo(info, std::cout, std::cerr);
    return 2;
}
