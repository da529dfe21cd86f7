from django.urls import path

from sandbox import apimart

app_name = "sandbox"

urlpatterns = [
    path("apimart/v1/videos/generations", apimart.generations, name="apimart-generations"),
    path("apimart/v1/tasks/<str:task_id>", apimart.task_status, name="apimart-task"),
    path("apimart/files/<str:task_id>.mp4", apimart.video, name="apimart-video"),
]
