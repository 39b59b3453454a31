// frontier-tokenize: tokenize a UTF-8 text file with a GGUF model's own tokenizer in
// llama.cpp (special tokens added as the file says, none parsed from the text) and write
// the ids as raw int32.
//
//   frontier-tokenize MODEL.gguf TEXT.txt OUT.bin
//
// Built by frontier against the cached llama.cpp build; exits non-zero with one line on
// stderr when anything fails.
#include "llama.h"

#include <cstdio>
#include <string>
#include <vector>

static void quiet(enum ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static int fail(const char * what) {
    fprintf(stderr, "frontier-tokenize: %s\n", what);
    return 1;
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        return fail("usage: frontier-tokenize MODEL.gguf TEXT.txt OUT.bin");
    }
    FILE * f = fopen(argv[2], "rb");
    if (!f) {
        return fail("cannot open the text file");
    }
    std::string text;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        text.append(buf, got);
    }
    fclose(f);
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        return fail("llama.cpp could not load the model's vocabulary");
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    std::vector<llama_token> ids(text.size() + 16);
    int n = llama_tokenize(vocab, text.data(), (int) text.size(), ids.data(), (int) ids.size(),
                           /*add_special=*/true, /*parse_special=*/false);
    if (n < 0) {
        return fail("llama_tokenize failed");
    }
    FILE * out = fopen(argv[3], "wb");
    if (!out || fwrite(ids.data(), sizeof(llama_token), n, out) != (size_t) n) {
        return fail("could not write the token ids");
    }
    fclose(out);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
