// all-MiniLM-L6-v2 on the CPU against sentence-transformers' embeddings (minilm_ref.h). Run by ctest's
// minilm_embeddings (which fetches the model and sets MLXN_MINILM_DIR); skips elsewhere.
#include "minilm_ref.h"

namespace mlxn {
namespace {

TEST(BertMiniLM, MatchesSentenceTransformers) { test::minilm::check_model(Device::cpu(), 0.99999, 3e-4); }

}  // namespace
}  // namespace mlxn
