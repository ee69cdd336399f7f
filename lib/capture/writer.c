#include "writer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

struct emo_video_writer {
        AVFormatContext *fmt;
        AVCodecContext *enc;
        AVStream *st;
        struct SwsContext *sws;
        AVFrame *frame;
        AVPacket *pkt;
        bool header_written;
        int64_t last_pts;
        int64_t frames;
};

static int fail(int r, char **ret_message, const char *what, int averror) {
        if (ret_message) {
                char buf[AV_ERROR_MAX_STRING_SIZE] = "";
                if (averror)
                        av_strerror(averror, buf, sizeof(buf));
                if (asprintf(ret_message, "%s%s%s", what, averror ? ": " : "", buf) < 0)
                        *ret_message = NULL;
        }
        return r;
}

static int errno_of(int averror) {
        return averror < 0 && averror > -4096 ? averror : -EIO;
}

emo_video_writer_t *emo_video_writer_free(emo_video_writer_t *w) {
        if (!w)
                return NULL;
        if (w->fmt && !(w->fmt->oformat->flags & AVFMT_NOFILE))
                avio_closep(&w->fmt->pb);
        avformat_free_context(w->fmt);
        avcodec_free_context(&w->enc);
        sws_freeContext(w->sws);
        av_frame_free(&w->frame);
        av_packet_free(&w->pkt);
        free(w);
        return NULL;
}

int emo_video_writer_open(const char *path, int width, int height, double fps, emo_video_writer_t **ret,
                          char **ret_message) {
        if (ret_message)
                *ret_message = NULL;
        width &= ~1;
        height &= ~1;
        if (width <= 0 || height <= 0)
                return fail(-EINVAL, ret_message, "frames too small to encode", 0);
        if (!(fps > 0))
                fps = 25;
        emo_video_writer_t *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->last_pts = -1;
        int r = avformat_alloc_output_context2(&w->fmt, NULL, NULL, path);
        if (r < 0 || !w->fmt) {
                emo_video_writer_free(w);
                return fail(-EINVAL, ret_message, "no video format for this file name (try .mp4, .mkv or .avi)", 0);
        }
        const AVCodec *codec = avcodec_find_encoder(w->fmt->oformat->video_codec);
        if (!codec) {
                emo_video_writer_free(w);
                return fail(-EINVAL, ret_message, "no encoder for this file type in this FFmpeg", 0);
        }
        w->st = avformat_new_stream(w->fmt, NULL);
        w->enc = avcodec_alloc_context3(codec);
        w->frame = av_frame_alloc();
        w->pkt = av_packet_alloc();
        if (!w->st || !w->enc || !w->frame || !w->pkt) {
                emo_video_writer_free(w);
                return -ENOMEM;
        }
        /* MPEG-4 part 2 allows time base denominators up to 65535: 29.97 is 30000/1001. */
        AVRational rate = av_d2q(fps, 65535);
        w->enc->width = width;
        w->enc->height = height;
        w->enc->time_base = av_inv_q(rate);
        w->enc->framerate = rate;
        w->enc->pix_fmt = AV_PIX_FMT_YUV420P;
        w->enc->gop_size = 12;
        if (codec->id == AV_CODEC_ID_H264)
                av_opt_set(w->enc->priv_data, "preset", "veryfast", 0); /* x264: a fraction of the CPU */
        else {
                /* MPEG-4 and the like: a constant quality instead of the default 200 kb/s. */
                w->enc->flags |= AV_CODEC_FLAG_QSCALE;
                w->enc->global_quality = FF_QP2LAMBDA * 4;
        }
        if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER)
                w->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        r = avcodec_open2(w->enc, codec, NULL);
        if (r < 0) {
                emo_video_writer_free(w);
                return fail(errno_of(r), ret_message, "cannot open the encoder", r);
        }
        r = avcodec_parameters_from_context(w->st->codecpar, w->enc);
        if (r < 0) {
                emo_video_writer_free(w);
                return fail(errno_of(r), ret_message, "cannot set up the stream", r);
        }
        w->st->time_base = w->enc->time_base;
        w->st->avg_frame_rate = rate;
        if (!(w->fmt->oformat->flags & AVFMT_NOFILE)) {
                r = avio_open(&w->fmt->pb, path, AVIO_FLAG_WRITE);
                if (r < 0) {
                        emo_video_writer_free(w);
                        return fail(errno_of(r), ret_message, "cannot create the file", r);
                }
        }
        r = avformat_write_header(w->fmt, NULL);
        if (r < 0) {
                emo_video_writer_free(w);
                return fail(errno_of(r), ret_message, "cannot write the header", r);
        }
        w->header_written = true;
        w->frame->format = w->enc->pix_fmt;
        w->frame->width = width;
        w->frame->height = height;
        r = av_frame_get_buffer(w->frame, 0);
        if (r < 0) {
                emo_video_writer_free(w);
                return -ENOMEM;
        }
        *ret = w;
        return 0;
}

/* Send frame (NULL: flush) and write every packet the encoder gives back. */
static int encode(emo_video_writer_t *w, AVFrame *frame) {
        int r = avcodec_send_frame(w->enc, frame);
        if (r < 0)
                return errno_of(r);
        for (;;) {
                r = avcodec_receive_packet(w->enc, w->pkt);
                if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
                        return 0;
                if (r < 0)
                        return errno_of(r);
                av_packet_rescale_ts(w->pkt, w->enc->time_base, w->st->time_base);
                w->pkt->stream_index = w->st->index;
                r = av_interleaved_write_frame(w->fmt, w->pkt);
                if (r < 0)
                        return errno_of(r);
        }
}

int emo_video_writer_write(emo_video_writer_t *w, const uint8_t *pixels, size_t stride, int width, int height,
                           int64_t number) {
        w->sws = sws_getCachedContext(w->sws, width, height, AV_PIX_FMT_BGR0, w->enc->width, w->enc->height,
                                      w->enc->pix_fmt, SWS_BILINEAR, NULL, NULL, NULL);
        if (!w->sws)
                return -ENOMEM;
        int r = av_frame_make_writable(w->frame);
        if (r < 0)
                return errno_of(r);
        const uint8_t *src[4] = { pixels };
        int src_stride[4] = { (int) stride };
        sws_scale(w->sws, src, src_stride, 0, height, w->frame->data, w->frame->linesize);
        w->frame->pts = number > w->last_pts ? number : w->last_pts + 1;
        w->last_pts = w->frame->pts;
        r = encode(w, w->frame);
        if (r == 0)
                w->frames++;
        return r;
}

int64_t emo_video_writer_frames(const emo_video_writer_t *w) {
        return w->frames;
}

int emo_video_writer_close(emo_video_writer_t *w, char **ret_message) {
        if (ret_message)
                *ret_message = NULL;
        int r = encode(w, NULL);
        if (r < 0) {
                fail(r, ret_message, "cannot finish encoding", 0);
                emo_video_writer_free(w);
                return r;
        }
        int k = av_write_trailer(w->fmt);
        if (k < 0) {
                emo_video_writer_free(w);
                return fail(errno_of(k), ret_message, "cannot finish the file", k);
        }
        if (!(w->fmt->oformat->flags & AVFMT_NOFILE)) {
                k = avio_closep(&w->fmt->pb);
                if (k < 0) {
                        emo_video_writer_free(w);
                        return fail(errno_of(k), ret_message, "cannot close the file", k);
                }
        }
        emo_video_writer_free(w);
        return 0;
}
