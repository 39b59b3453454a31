// frontier-logits: run one sequence of token ids through a GGUF model in llama.cpp and
// write the logits of every position as raw float32 (n_tokens x n_vocab, row-major).
//
//   frontier-logits MODEL.gguf TOKENS.bin OUT.bin [THREADS]
//
// TOKENS.bin holds int32 token ids. Built by frontier against the cached llama.cpp build;
// exits non-zero with one line on stderr when anything fails.
#include "llama.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

static void quiet(enum ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static int fail(const char * what) {
    fprintf(stderr, "frontier-logits: %s\n", what);
    return 1;
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        return fail("usage: frontier-logits MODEL.gguf TOKENS.bin OUT.bin [THREADS]");
    }
    const int threads = argc > 4 ? atoi(argv[4]) : 1;
    FILE * f = fopen(argv[2], "rb");
    if (!f) {
        return fail("cannot open the token file");
    }
    std::vector<llama_token> tokens;
    llama_token t;
    while (fread(&t, sizeof t, 1, f) == 1) {
        tokens.push_back(t);
    }
    fclose(f);
    if (tokens.empty()) {
        return fail("no tokens");
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        return fail("llama.cpp could not load the model");
    }
    const int n = (int) tokens.size();
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n;
    cp.n_batch = n;
    cp.n_ubatch = n;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    // full precision everywhere, for a comparison with float32 transformers (the default
    // KV cache is f16, which alone moves log-probabilities by ~1e-2)
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        return fail("llama.cpp could not create a context");
    }
    llama_batch batch = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; ++i) {
        batch.token[i] = tokens[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n;
    if (llama_decode(ctx, batch) != 0) {
        return fail("llama_decode failed");
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    FILE * out = fopen(argv[3], "wb");
    if (!out) {
        return fail("cannot write the output file");
    }
    for (int i = 0; i < n; ++i) {
        const float * row = llama_get_logits_ith(ctx, i);
        if (!row || fwrite(row, sizeof(float), n_vocab, out) != (size_t) n_vocab) {
            fclose(out);
            return fail("could not write the logits");
        }
    }
    fclose(out);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
