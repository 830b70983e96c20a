# Weights: block formats (src/quant) and file formats (src/io). Included by the top-level CMakeLists.txt while it
# builds MLXN_SOURCES.
set(MLXN_QUANT_SOURCES
  src/quant/ggml_type.cpp
  src/quant/dequantize.cpp
  src/quant/quantize.cpp
  src/quant/affine.cpp
)
set(MLXN_IO_SOURCES
  src/io/mapped_file.cpp
  src/io/gguf.cpp
  src/io/gguf_writer.cpp
  src/io/safetensors.cpp
  src/io/json_config.cpp
  src/io/npy.cpp
  src/io/quantize_model.cpp
)
list(APPEND MLXN_SOURCES ${MLXN_QUANT_SOURCES} ${MLXN_IO_SOURCES})

# Bit-exact agreement with ggml needs every multiply and add rounded separately: no fused multiply-add.
set_source_files_properties(src/quant/dequantize.cpp src/quant/quantize.cpp src/quant/affine.cpp
  DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")

# safetensors headers and config.json are JSON (Debian: nlohmann-json3-dev); header-only, used in src/io only.
find_package(nlohmann_json 3.9 REQUIRED)
set(MLXN_EXTRA_PRIVATE_LIBS nlohmann_json::nlohmann_json)
