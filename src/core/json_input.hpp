// JSON that comes from outside the process: request bodies, form fields, WebSocket messages, MCP
// messages, presets and calibration tables.
//
// nlohmann's parser keeps its own stack, but printing, comparing and copying a value recurse, so
// a text of tens of thousands of '[' parses fine and then overflows the stack of whatever touches
// it next (an error message that quotes it, say). parse_outside_json refuses such nesting before
// anything is built, and turns the library's exception texts into messages for people.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace upres {

// Deepest nesting of arrays and objects accepted from outside. Real requests use 2 or 3.
constexpr int kMaxJsonDepth = 64;

// The deepest nesting of [ and { in `text` (brackets inside strings do not count); stops counting
// once it passes `stop_after`.
int json_nesting_depth(std::string_view text, int stop_after = kMaxJsonDepth);

// Parses `text`; throws Error(invalid_argument) saying what is wrong with `what` ("the request
// body", "preset file x.json") when it is not JSON or nests deeper than kMaxJsonDepth.
nlohmann::json parse_outside_json(std::string_view text, std::string_view what);

// Serialises without ever throwing: text that is not UTF-8 (a client's file name, say) comes out
// with U+FFFD in place of the bad bytes.
std::string json_text(const nlohmann::json& value, int indent = -1);

// A value as an error message quotes it: serialised safely and cut to about `max_chars`.
std::string json_brief(const nlohmann::json& value, size_t max_chars = 60);

// The type of a JSON value in words ("a string", "an object"), for messages about wrong types.
const char* json_type_words(const nlohmann::json& value);

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
bool is_valid_utf8(std::string_view text);

}  // namespace upres
