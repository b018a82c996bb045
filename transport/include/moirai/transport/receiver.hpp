// What every receiver in transport offers, as concepts that each receiver's header static_asserts.
//
//   co_await r.recv()                 the next message, waiting as long as it takes
//   co_await r.recv(timeout)          the next message, or TransportError(timeout) (== std::errc::timed_out)
//   co_await r.recv_from(s)           where messages have senders: the next message from sender `s`; the
//   co_await r.recv_from(s, timeout)  others that arrive meanwhile are kept, in order, for later receives
//
// A received message names its bytes (or value) `payload` and, where messages have senders, its sender
// `sender` (an EndpointId). recv_from gives the same type as recv. The default timeout is forever everywhere.
#pragma once

#include <concepts>
#include <type_traits>
#include <utility>

#include "moirai/core/clock.hpp"
#include "moirai/transport/endpoint.hpp"

namespace moirai::transport {

// The type `co_await a` gives, for an awaiter or for a type with operator co_await (as Task<T>).
template <class A>
struct awaited {
  using type = decltype(std::declval<A&>().await_resume());
};
template <class A>
requires requires(A&& a) {
  std::forward<A>(a).operator co_await();
}
struct awaited<A> {
  using type = decltype(std::declval<A>().operator co_await().await_resume());
};
template <class A>
using awaited_t = typename awaited<std::remove_cvref_t<A>>::type;

// What co_await r.recv(timeout) gives on a receiver R.
template <class R>
using received_t = std::remove_cvref_t<awaited_t<decltype(std::declval<R&>().recv(Duration{}))>>;

template <class R>
concept Receiver = requires(R& r, Duration timeout) {
  r.recv();
  r.recv(timeout);
  requires std::same_as<received_t<R>, std::remove_cvref_t<awaited_t<decltype(r.recv())>>>;
  std::declval<received_t<R>&>().payload;
};

template <class R>
concept SelectiveReceiver = Receiver<R> && requires(R& r, EndpointId sender, Duration timeout) {
  r.recv_from(sender);
  r.recv_from(sender, timeout);
  requires std::same_as<received_t<R>,
                        std::remove_cvref_t<awaited_t<decltype(r.recv_from(sender, timeout))>>>;
  requires std::same_as<std::remove_cvref_t<decltype(std::declval<received_t<R>&>().sender)>, EndpointId>;
};

}  // namespace moirai::transport
