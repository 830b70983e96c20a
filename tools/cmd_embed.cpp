// mlxn embed --model DIR|FILE.gguf --text A [--text B ...] [--tokenizer DIR] [--device cpu|cuda[:N]] [--ids]
// Embeds texts with a BERT-style sentence encoder (all-MiniLM-L6-v2, bge-small-en-v1.5, ...): WordPiece tokens
// ([CLS] ... [SEP], truncated to the model's max_seq_length), one padded batch, the model's pooling and L2
// normalisation. A .gguf model uses its own vocabulary unless --tokenizer names a folder. One text: prints its vector
// as a JSON array. Two: the cosine similarity. More: the matrix of pairwise cosine similarities. --ids prints the token
// ids of each text first.
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.h"
#include "mlxn/core/device.h"
#include "mlxn/io/gguf.h"
#include "mlxn/models/bert.h"
#include "tokenizer/wordpiece.h"

namespace mlxn::cli {
namespace {

constexpr const char* kUsage =
    "usage: mlxn embed --model DIR|FILE.gguf --text A [--text B ...] [--tokenizer DIR] [--device cpu|cuda[:N]] "
    "[--ids]";

Result<Device> open_device(const std::string& spec) {
  if (spec == "cpu") return Device::cpu();
  if (spec.rfind("cuda", 0) == 0) {
    int ordinal = 0;
    if (spec.size() > 4) {
      const char* b = spec.data() + 5;
      const char* e = spec.data() + spec.size();
      auto [p, ec] = std::from_chars(b, e, ordinal);
      if (spec[4] != ':' || ec != std::errc() || p != e)
        return invalid_argument("embed", "bad --device '", spec, "': cpu, cuda or cuda:N");
    }
    return Device::open(Backend::Cuda, ordinal);
  }
  return invalid_argument("embed", "bad --device '", spec, "': cpu, cuda or cuda:N");
}

}  // namespace

int cmd_embed(const Args& args) {
  std::string model_path, tokenizer_dir, device = Device::cuda_device_count() > 0 ? "cuda" : "cpu";
  std::vector<std::string> texts;
  bool show_ids = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    std::string v;
    if (a == "--model" && value(v)) {
      model_path = v;
    } else if (a == "--text" && value(v)) {
      texts.push_back(v);
    } else if (a == "--tokenizer" && value(v)) {
      tokenizer_dir = v;
    } else if (a == "--device" && value(v)) {
      device = v;
    } else if (a == "--ids") {
      show_ids = true;
    } else {
      return fail("embed", "unexpected argument '" + a + "'\n" + kUsage);
    }
  }
  if (model_path.empty() || texts.empty())
    return fail("embed", std::string("--model and --text are required\n") + kUsage);
  const bool gguf = !std::filesystem::is_directory(model_path);
  auto dev = open_device(device);
  if (!dev) return fail("embed", dev.status().to_string());
  Result<std::unique_ptr<tok::WordPieceTokenizer>> tok = unsupported("embed", "no tokenizer");
  if (!tokenizer_dir.empty() || !gguf) {
    tok = tok::WordPieceTokenizer::from_hf_dir(tokenizer_dir.empty() ? model_path : tokenizer_dir);
  } else {
    auto f = io::GgufFile::open(model_path);
    if (!f) return fail("embed", f.status().to_string());
    tok = tok::WordPieceTokenizer::from_gguf(*f);
  }
  if (!tok) return fail("embed", tok.status().to_string());
  auto model = models::BertModel::load(model_path, *dev);
  if (!model) return fail("embed", model.status().to_string());
  const auto& c = (*model)->config();
  const int64_t limit = std::min({c.n_pos, c.max_seq_len, (*tok)->max_length() > 0 ? (*tok)->max_length() : c.n_pos});

  std::vector<std::vector<int32_t>> batch;
  for (const auto& t : texts) {
    batch.push_back((*tok)->encode(t, true, limit));
    if (show_ids) {
      std::printf("ids:");
      for (int32_t id : batch.back()) std::printf(" %d", id);
      std::printf("\n");
    }
  }
  auto emb = (*model)->embed(batch);
  if (!emb) return fail("embed", emb.status().to_string());
  if (texts.size() == 1) {
    const auto& e = emb->front();
    std::printf("[");
    for (size_t i = 0; i < e.size(); ++i) std::printf("%s%.7g", i ? ", " : "", static_cast<double>(e[i]));
    std::printf("]\n");
  } else if (texts.size() == 2) {
    std::printf("%.6f\n", models::cosine_similarity((*emb)[0], (*emb)[1]));
  } else {
    for (size_t i = 0; i < emb->size(); ++i) {
      for (size_t j = 0; j < emb->size(); ++j)
        std::printf("%s%.6f", j ? " " : "", models::cosine_similarity((*emb)[i], (*emb)[j]));
      std::printf("\n");
    }
  }
  std::fprintf(stderr, "%s on %s, %zu texts\n", c.summary().c_str(), device.c_str(), texts.size());
  return 0;
}

}  // namespace mlxn::cli
