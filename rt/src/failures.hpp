// Steps that go on after one of them fails (a clean-up that undoes what it can): each failure is kept in
// words, and one RtError at the end carries them all, with the errno of the first as its code (internal).
#pragma once

#include <string>

#include "moirai/rt/error.hpp"

namespace moirai::rt::detail {

class Failures {
 public:
  // A step that failed with errno `err`; `text` names the step, where, and the errno in words.
  void add(int err, const std::string& text) {
    if (text_.empty()) {
      first_ = err;
    } else {
      text_ += "; ";
    }
    text_ += text;
  }
  void add(const RtError& e) { add(e.code().value(), e.what()); }

  // Throws RtError(the first errno, `context`: every failed step) when a step failed.
  void throw_if_any(const std::string& context) const {
    if (!text_.empty()) throw RtError(first_, context + ": " + text_);
  }

 private:
  int first_ = 0;
  std::string text_;
};

}  // namespace moirai::rt::detail
