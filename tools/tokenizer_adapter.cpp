// Plugs the tokenizer library (models/tokenizer) into generation: a GGUF model's own vocabulary, or a Hugging Face
// folder's tokenizer.json.
#include <filesystem>

#include "mlxn/io/gguf.h"
#include "mlxn/models/generate.h"
#include "tokenizer/tokenizer.h"

namespace mlxn::cli {
namespace {

class Adapter final : public models::Tokenizer {
 public:
  explicit Adapter(std::unique_ptr<tok::Tokenizer> t) : t_(std::move(t)) {}
  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special) const override {
    return t_->encode(text, add_special);
  }
  Result<std::string> decode(std::span<const int32_t> ids) const override { return t_->decode(ids); }
  std::vector<int32_t> stop_ids() const override {
    std::vector<int32_t> ids;
    for (int32_t id : {t_->eos(), t_->eot()})
      if (id >= 0) ids.push_back(id);
    return ids;
  }

 private:
  std::unique_ptr<tok::Tokenizer> t_;
};

}  // namespace

void install_tokenizer() {
  models::set_tokenizer_factory([](const std::string& path) -> Result<std::unique_ptr<models::Tokenizer>> {
    Result<std::unique_ptr<tok::Tokenizer>> t = unsupported("tokenizer", "no tokenizer for ", path);
    if (std::filesystem::is_directory(path)) {
      t = tok::Tokenizer::from_hf_dir(path);
    } else {
      MLXN_ASSIGN_OR_RETURN(io::GgufFile f, io::GgufFile::open(path));
      t = tok::Tokenizer::from_gguf(f);
    }
    if (!t.is_ok()) return t.status();
    return std::unique_ptr<models::Tokenizer>(new Adapter(std::move(t).value()));
  });
}

}  // namespace mlxn::cli
