#include "bench/subscriber.h"

#include "bench/events.h"
#include "bench/harness.h"
#include "bench/paho_client.h"

namespace edgesync::bench {

EventSubscriber::EventSubscriber(const std::string& uri, const test::TlsMaterial& tls,
                                 const std::string& client_id, Handler on_event)
    : on_event_(std::move(on_event)),
      client_(uri, client_id, mqtt::create_options(MQTTVERSION_5), nullptr) {
  client_.set_message_callback([this](mqtt::const_message_ptr m) {
    const int64_t t = now_ns();  // first, so the handler's own work is not in the figure
    const mqtt::binary_ref& payload = m->get_payload_ref();
    on_event_(payload.data(), payload.size(), t);
  });
  client_.connect(tls_connect_options(tls))->wait();
  client_.subscribe(events_topic_filter(), 1)->wait();
}

EventSubscriber::~EventSubscriber() {
  try {
    client_.disconnect()->wait();
  } catch (const std::exception&) {
    // The broker was stopped under us: nothing more can arrive either way.
  }
}

}  // namespace edgesync::bench
