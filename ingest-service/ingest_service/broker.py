"""Kombu's Redis transport with one repair: an acknowledgement Redis never heard gives its slot back.

Kombu's Redis QoS acknowledges a message in two steps: it removes the message from Redis's
unacked set, then from its own count of messages in hand. When Redis is unreachable the first
step raises (Celery logs "Couldn't ack") and the second never happens: the message stays counted,
and with one message in hand per process the channel never asks Redis for another one. Its BRPOP
is paused meanwhile, so the consumer never sees the broken connection and never reconnects. The
worker stays up and imports nothing until it is restarted (kombu 5.7.0; celery/celery#8030 and
#10205 describe the symptom). It happens whenever an import ends while Redis is down.

Here the slot is given back before the error goes on. The consumer then resumes its BRPOP, meets
the broken connection and reconnects as it does for any other broker outage. The message itself
is still in Redis's unacked set: the transport's own sweep puts it back in the queue after the
visibility timeout, and the import task ends at once for a job that has already ended.
"""

from urllib.parse import urlsplit

from kombu.transport import redis, virtual

TRANSPORT = f"{__name__}:Transport"


class QoS(redis.QoS):
    def ack(self, delivery_tag):
        try:
            super().ack(delivery_tag)
        except self.channel.connection_errors:
            virtual.QoS.ack(self, delivery_tag)
            raise

    def reject(self, delivery_tag, requeue=False):
        try:
            super().reject(delivery_tag, requeue=requeue)
        except self.channel.connection_errors:
            virtual.QoS.ack(self, delivery_tag)
            raise


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """This transport for a plain ``redis://`` broker; ``None`` (kombu's choice by scheme) for others.

    ``rediss://`` and ``sentinel://`` keep kombu's own transports, whose set-up depends on the scheme.
    """
    return TRANSPORT if urlsplit(broker_url).scheme == "redis" else None
