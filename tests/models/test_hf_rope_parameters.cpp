// config.json as transformers >= 5 writes it: rope_parameters in place of rope_theta / rope_scaling (and, for
// Gemma 3, one object per layer type in place of rope_local_base_freq). The values are chosen unlike every default.
#include <gtest/gtest.h>

#include "mlxn/io/json_config.h"
#include "mlxn/models/config.h"

namespace mlxn {
namespace {

TEST(HfConfig, RopeParametersOfTransformers5) {
  auto j = io::JsonConfig::parse(R"({"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 256,
    "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
    "max_position_embeddings": 8192, "rope_parameters": {"rope_theta": 50000.0, "rope_type": "llama3",
    "factor": 8.0, "low_freq_factor": 2.0, "high_freq_factor": 5.0, "original_max_position_embeddings": 4096}})");
  ASSERT_TRUE(j.is_ok()) << j.status().to_string();
  auto c = models::config_from_hf(*j);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->rope_base, 50000.0f);
  EXPECT_EQ(c->rope_scaling, models::RopeScaling::Llama3);
  EXPECT_EQ(c->rope_factor, 8.0f);
  EXPECT_EQ(c->rope_low_freq_factor, 2.0f);
  EXPECT_EQ(c->rope_high_freq_factor, 5.0f);
  EXPECT_EQ(c->rope_orig_ctx, 4096);

  auto g = io::JsonConfig::parse(R"({"model_type": "gemma3_text", "num_hidden_layers": 6, "hidden_size": 256,
    "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 64,
    "vocab_size": 1000, "sliding_window": 16, "layer_types": ["sliding_attention", "sliding_attention",
    "sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
    "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 5000.0},
                        "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 200000.0}}})");
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  auto gc = models::config_from_hf(*g);
  ASSERT_TRUE(gc.is_ok()) << gc.status().to_string();
  EXPECT_EQ(gc->rope_base, 200000.0f);
  EXPECT_EQ(gc->rope_base_local, 5000.0f);
  EXPECT_EQ(gc->rope_scaling, models::RopeScaling::Linear);
  EXPECT_EQ(gc->rope_factor, 4.0f);
  EXPECT_TRUE(gc->sliding(0));
  EXPECT_FALSE(gc->sliding(5));
}

}  // namespace
}  // namespace mlxn
